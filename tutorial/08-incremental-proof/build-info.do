# build-info: when the image was built, for /etc/build-info.
# Deliberately wrong: it reads the clock, so no two builds agree (see README).
date
