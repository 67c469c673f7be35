#!/bin/sh
# greet: the program of this chapter's image.
echo "Hello from a signed image!"
