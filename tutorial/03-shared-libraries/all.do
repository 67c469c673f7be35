# all: run the dynamically linked program in the rootfs that carries its libraries.
redo-ifchange hello.runlocal
