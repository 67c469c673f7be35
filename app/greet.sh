#!/bin/sh
# greet: the app this image ships. It says hello and shows that the image holds
# nothing but what its specs deliver.
name=${1:-world}
echo "Hello, $name, from an image built by redo-ts!"
echo "This image holds: $(cd / && echo bin/* usr/bin/*)"
