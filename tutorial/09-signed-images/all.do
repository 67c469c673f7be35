# all: the image (app.tar and app.oci.tar).
redo-ifchange app.tar
