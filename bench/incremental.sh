#!/usr/bin/env bash
# bench/incremental: how long the default image takes to build from clean, to check
# when nothing changed, and to rebuild after one edit of the app's source, and how
# many bytes of layers each rebuild rewrote. Prints medians of RUNS runs (default 5).
# Usage: bench/incremental.sh [RUNS]   (run `npm ci` or `npm run build` first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d /tmp/redo-ts-bench-incremental.XXXXXX)
trap 'rm -rf "$work"' EXIT
export REDO_TS_CACHE="$work/cache"

copy() { # a fresh copy of the tracked files, as a clone after npm ci
  rm -rf "$work/p" && mkdir -p "$work/p"
  (cd "$repo" && git ls-files -z | xargs -0 cp -P --parents -t "$work/p")
  ln -s "$repo/node_modules" "$work/p/node_modules"
  ln -s "$repo/dist" "$work/p/dist"
}
now_ms() { date +%s%3N; }
timed() { # prints wall ms of "$@" run in the copy
  local t0 t1; t0=$(now_ms); (cd "$work/p" && "$@" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  t1=$(now_ms); echo $((t1 - t0))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
layer_bytes() { # "inode size" of every layer tar, to tell which were rewritten
  (cd "$work/p" && find targets -name '*.fragment.tar' -printf '%p %i %s\n' | sort)
}
rewritten() { # bytes of layer tars whose inode changed between two listings
  join <(echo "$1") <(echo "$2") | awk '$2 != $4 {sum += $5} END {print sum + 0}'
}

redo=(node "$repo/bin/redo-ts.js")
copy; timed "${redo[@]}" image.tar >/dev/null   # warm the source cache once

clean=() noop=() change=() rewrote=()
for i in $(seq "$runs"); do
  copy
  clean+=("$(timed "${redo[@]}" image.tar)")
  noop+=("$(timed "${redo[@]}" image.tar)")
  before=$(layer_bytes)
  printf '# edit %s\n' "$i" >> "$work/p/app/greet.sh"
  change+=("$(timed "${redo[@]}" image.tar)")
  after=$(layer_bytes)
  rewrote+=("$(rewritten "$before" "$after")")
done
total=$(cd "$work/p" && find targets -name '*.fragment.tar' -printf '%s\n' | awk '{s+=$1} END {print s}')
printf 'redo-ts image.tar (median of %s runs, warm source cache)\n' "$runs"
printf '  clean build:          %5s ms\n' "$(printf '%s\n' "${clean[@]}" | median)"
printf '  no-op rebuild:        %5s ms\n' "$(printf '%s\n' "${noop[@]}" | median)"
printf '  one-change rebuild:   %5s ms\n' "$(printf '%s\n' "${change[@]}" | median)"
printf '  layer bytes rewritten by the change: %s of %s\n' "$(printf '%s\n' "${rewrote[@]}" | median)" "$total"
printf '  NODE_EXTRA_CA_CERTS: %s\n' "${NODE_EXTRA_CA_CERTS:-unset}"
