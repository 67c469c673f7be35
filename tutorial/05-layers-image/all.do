# all: the image, as a docker archive (hello.tar) and an OCI layout (hello.oci.tar).
redo-ifchange hello.tar hello.oci.tar
