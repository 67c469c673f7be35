# hello: the program hello.spec.yaml builds (a locked gcc in the build sandbox, linked
# statically so it needs no other file at run time), taken out of its fragment.
redo-ifchange hello.fragment.tar
tar -xOf hello.fragment.tar hello > "$3"
chmod 0755 "$3"
