# all: the fragment built from the pinned package.
redo-ifchange hello.fragment.tar
