# hello: hello.c compiled with the host's C compiler, linked statically so it needs
# no other file at run time.
redo-ifchange hello.c
cc -static -O2 -o "$3" hello.c
