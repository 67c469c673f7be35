# all: the example image, as a docker archive.
redo-ifchange targets/express.tar
