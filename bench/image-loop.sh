#!/usr/bin/env bash
# bench/image-loop: the inner loop of the default image, beside its anchors, in one run:
# `node -e 0`; a no-op `redo-ts image.tar`; a one-line edit of app/greet.sh then
# `redo-ts image.tar`; the same edit then `redo-ts push` to a loopback docker-registry
# (skipped without docker-registry); the no-op through `npx redo-ts` (npm's own start-up
# on top, the README's first command). Each with NODE_EXTRA_CA_CERTS unset and set to the
# system bundle (a Node start loads it). Prints the median wall and CPU (user+sys, the
# process and its children) of RUNS runs (default 5): on a loaded machine read CPU and
# the ratios to `node -e 0`, not wall seconds.
# Usage: bench/image-loop.sh [RUNS]   (run `npm ci` or `npm run build` first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d /tmp/redo-ts-bench-loop.XXXXXX)
registry_pid=
cleanup() { if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
export REDO_TS_CACHE="$work/cache"
bundle=/etc/ssl/certs/ca-certificates.crt

mkdir -p "$work/p"
(cd "$repo" && git ls-files -z | xargs -0 cp -P --parents -t "$work/p")
ln -s "$repo/node_modules" "$work/p/node_modules"
ln -s "$repo/dist" "$work/p/dist"

. "$repo/bench/loop-lib.sh"
start_registry hello
edit=0
bump() { edit=$((edit + 1)); sed -i "s/^echo \"Hello, \$name.*/echo \"Hello, \$name, from an image built by redo-ts! ($edit)\"/" "$work/p/app/greet.sh"; }

redo=(node "$repo/bin/redo-ts.js")
(cd "$work/p" && "${redo[@]}" image.tar >/dev/null 2>&1)   # warm: sources, compiled rules, store
if [ -n "$reference" ]; then (cd "$work/p" && "${redo[@]}" push image.tar "$reference" >/dev/null 2>&1); fi

for ca in unset set; do
  declare -A wall=() cpu=()
  for i in $(seq "$runs"); do
    for case in node edit noop npx push; do
      [ "$case" = push ] && [ -z "$reference" ] && continue
      if [ "$ca" = set ]; then export NODE_EXTRA_CA_CERTS=$bundle; else unset NODE_EXTRA_CA_CERTS; fi
      case $case in
        node) read -r w c < <(measure node -e 0) ;;
        noop) read -r w c < <(measure "${redo[@]}" image.tar) ;;
        npx) read -r w c < <(measure npx redo-ts image.tar) ;;
        edit) bump; read -r w c < <(measure "${redo[@]}" image.tar) ;;
        push) bump; read -r w c < <(measure "${redo[@]}" push image.tar "$reference") ;;
      esac
      wall[$case]+="$w "; cpu[$case]+="$c "
    done
  done
  printf 'default image, NODE_EXTRA_CA_CERTS %s (median of %s runs: wall s, cpu s)\n' "$ca" "$runs"
  base_wall=$(echo "${wall[node]}" | tr ' ' '\n' | grep . | median)
  base_cpu=$(echo "${cpu[node]}" | tr ' ' '\n' | grep . | median)
  for case in node noop npx edit push; do
    [ -z "${wall[$case]:-}" ] && continue
    w=$(echo "${wall[$case]}" | tr ' ' '\n' | grep . | median)
    c=$(echo "${cpu[$case]}" | tr ' ' '\n' | grep . | median)
    label=$(case $case in node) echo 'node -e 0';; noop) echo 'no-op redo-ts image.tar';; npx) echo 'no-op npx redo-ts image.tar';; edit) echo 'edit greet.sh + image.tar';; push) echo 'edit + push';; esac)
    printf '  %-28s wall %6s  cpu %6s   (node -e 0 + %s s wall, x%s cpu)\n' "$label" "$w" "$c" \
      "$(awk -v a="$w" -v b="$base_wall" 'BEGIN {printf "%.3f", a - b}')" "$(awk -v a="$c" -v b="$base_cpu" 'BEGIN {printf "%.1f", (b > 0 ? a / b : 0)}')"
  done
  unset wall cpu
done
