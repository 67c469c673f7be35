# all: the image, as a docker archive (debian.tar) and an OCI layout (debian.oci.tar).
redo-ifchange debian.tar debian.oci.tar
