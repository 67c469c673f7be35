# all: the example's image, as a docker archive (targets/app.tar) and an OCI layout.
redo-ifchange targets/app.tar targets/app.oci.tar
