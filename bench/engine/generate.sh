#!/bin/sh
# Generates the engine benchmark project in folder $1: 1000 sources, 1000 leaf targets
# built by one sh default.leaf.do that calls redo-ifchange, 32 aggregates, one `all`,
# and the equivalent Makefile (whose recipes also spawn sh).
set -e
dir=$1
[ -n "$dir" ] || { echo "usage: generate.sh DIR" >&2; exit 2; }
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
mkdir .git
sources=1000
aggregates=32
i=0
while [ $i -lt $sources ]; do
  name=$(printf 's%04d' $i)
  echo "source $i" > "$name.src"
  i=$((i + 1))
done
cat > default.leaf.do <<'DO'
redo-ifchange "$2.src"
cat "$2.src" > "$3"
DO
{
  # No built-in implicit rules: make then does only what the redo rules do.
  printf 'MAKEFLAGS += -rR\n.SUFFIXES:\n\n'
  printf 'all:'
  a=0
  while [ $a -lt $aggregates ]; do printf ' a%02d.agg' $a; a=$((a + 1)); done
  printf '\n\ttouch $@\n\n%%.leaf: %%.src\n\tcat $< > $@\n\n'
} > Makefile
a=0
all_deps=
while [ $a -lt $aggregates ]; do
  agg=$(printf 'a%02d' $a)
  leaves=
  i=$a
  while [ $i -lt $sources ]; do
    leaves="$leaves $(printf 's%04d' $i).leaf"
    i=$((i + aggregates))
  done
  printf 'redo-ifchange%s\ncat%s > "$3"\n' "$leaves" "$leaves" > "$agg.agg.do"
  printf '%s.agg:%s\n\tcat $^ > $@\n\n' "$agg" "$leaves" >> Makefile
  all_deps="$all_deps $agg.agg"
  a=$((a + 1))
done
printf 'redo-ifchange%s\n' "$all_deps" > all.do
