# all: boot the rootfs as an initrd and collect what the program printed.
redo-ifchange hello.runkvm
