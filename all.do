# all: what `redo-ts` with no target builds here: the default image and its OCI layout.
redo-ifchange image.tar image.oci.tar
