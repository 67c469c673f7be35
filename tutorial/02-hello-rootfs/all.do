# all: run the program, and the shell script, inside the rootfs.
redo-ifchange hello.runlocal hello.greet.runlocal
