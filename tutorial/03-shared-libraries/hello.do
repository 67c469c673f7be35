# hello: hello.c compiled with the host's C compiler, linked dynamically: it needs
# the C library and the dynamic loader at run time.
redo-ifchange hello.c
cc -O2 -o "$3" hello.c
