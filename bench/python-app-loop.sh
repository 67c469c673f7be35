#!/usr/bin/env bash
# bench/python-app-loop: the inner loop of examples/python-app (a 69 MB Debian python layer
# under a 3 KB app layer), beside `node -e 0`, in one run: a one-line edit of src/app.py
# then `redo-ts targets/app.tar` (the image), the same then `redo-ts all` (app.tar and
# app.oci.tar), and the same then `redo-ts push targets/app.tar` to a loopback
# docker-registry (skipped without docker-registry). Prints the median wall and CPU
# (user+sys, the process and its children) of RUNS runs (default 5), NODE_EXTRA_CA_CERTS
# unset; then, for one more edit of each kind, the bytes the build and its children read
# and wrote to files (strace: read/write/pread/pwrite/readv/writev, copy_file_range and
# sendfile counted on both sides), beside the budget issue 20 sets: 3x the changed layer
# plus the archives' own size. On a loaded machine read CPU, not wall.
# The first build fetches and unpacks the Debian packages (minutes; the cache in
# $REDO_TS_BENCH_CACHE, default /tmp/redo-ts-bench-python-cache, makes later runs quick).
# Usage: bench/python-app-loop.sh [RUNS]   (run `npm run build` first; needs strace)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d /tmp/redo-ts-bench-python.XXXXXX)
registry_pid=
cleanup() { if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
export REDO_TS_CACHE=${REDO_TS_BENCH_CACHE:-/tmp/redo-ts-bench-python-cache}
unset NODE_EXTRA_CA_CERTS

cp -r "$repo/examples/python-app" "$work/p"
cp -r "$repo/rules" "$work/p/rules"

. "$repo/bench/loop-lib.sh"
start_registry python-app
edit=0
bump() { edit=$((edit + 1)); sed -i "s/^    print(\"ok\".*/    print(\"ok\")  # edit $edit/" "$work/p/src/app.py"; }

redo=(node "$repo/bin/redo-ts.js")
(cd "$work/p" && "${redo[@]}" all >/dev/null 2>&1)   # warm: packages, fragments, compiled rules, store
if [ -n "$reference" ]; then (cd "$work/p" && "${redo[@]}" push targets/app.tar "$reference" >/dev/null 2>&1); fi

declare -A wall=() cpu=()
for i in $(seq "$runs"); do
  for case in node tar all push; do
    [ "$case" = push ] && [ -z "$reference" ] && continue
    case $case in
      node) read -r w c < <(measure node -e 0) ;;
      tar) bump; read -r w c < <(measure "${redo[@]}" targets/app.tar) ;;
      all) bump; read -r w c < <(measure "${redo[@]}" all) ;;
      push) bump; read -r w c < <(measure "${redo[@]}" push targets/app.tar "$reference") ;;
    esac
    wall[$case]+="$w "; cpu[$case]+="$c "
  done
done

# Bytes moved to and from files (not pipes, sockets or /dev) by the build and every child.
traced_bytes() { # prints "READ WRITTEN" bytes of "$@" run in the copy
  rm -rf "$work/trace" && mkdir "$work/trace"
  (cd "$work/p" && strace -ff -qq -y -e trace=read,pread64,readv,preadv,write,pwrite64,writev,pwritev,copy_file_range,sendfile -o "$work/trace/t" "$@" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  cat "$work/trace"/t.* | perl -ne '
    sub file { $_[0] =~ m{^/} && $_[0] !~ m{^/(dev|proc|sys)/} }
    if (/^(?:read|pread64|readv|preadv)\(\d+<([^>]*)>.*\) = (\d+)$/) { $r += $2 if file($1) }
    elsif (/^(?:write|pwrite64|writev|pwritev)\(\d+<([^>]*)>.*\) = (\d+)$/) { $w += $2 if file($1) }
    elsif (/^copy_file_range\(\d+<([^>]*)>, [^,]+, \d+<([^>]*)>.*\) = (\d+)$/) { $r += $3 if file($1); $w += $3 if file($2) }
    elsif (/^sendfile\(\d+<([^>]*)>, \d+<([^>]*)>.*\) = (\d+)$/) { $w += $3 if file($1); $r += $3 if file($2) }
    END { printf "%d %d\n", $r, $w }'
}

printf 'examples/python-app, NODE_EXTRA_CA_CERTS unset (median of %s runs: wall s, cpu s)\n' "$runs"
base_wall=$(echo "${wall[node]}" | tr ' ' '\n' | grep . | median)
base_cpu=$(echo "${cpu[node]}" | tr ' ' '\n' | grep . | median)
for case in node tar all push; do
  [ -z "${wall[$case]:-}" ] && continue
  w=$(echo "${wall[$case]}" | tr ' ' '\n' | grep . | median)
  c=$(echo "${cpu[$case]}" | tr ' ' '\n' | grep . | median)
  label=$(case $case in node) echo 'node -e 0';; tar) echo 'edit app.py + app.tar';; all) echo 'edit app.py + all (both archives)';; push) echo 'edit app.py + push';; esac)
  printf '  %-36s wall %6s  cpu %6s   (node -e 0 + %s s wall)\n' "$label" "$w" "$c" "$(awk -v a="$w" -v b="$base_wall" 'BEGIN {printf "%.3f", a - b}')"
done

layer=$(stat -c %s "$work/p/targets/app.fragment.tar")
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
printf 'bytes read + written to files by one edit (the changed layer: %s bytes)\n' "$layer"
for case in tar all push; do
  [ "$case" = push ] && [ -z "$reference" ] && continue
  bump
  case $case in
    tar) read -r r w < <(traced_bytes "${redo[@]}" targets/app.tar); archives=$(stat -c %s "$work/p/targets/app.tar") ;;
    all) read -r r w < <(traced_bytes "${redo[@]}" all); archives=$(( $(stat -c %s "$work/p/targets/app.tar") + $(stat -c %s "$work/p/targets/app.oci.tar") )) ;;
    push) read -r r w < <(traced_bytes "${redo[@]}" push targets/app.tar "$reference"); archives=0 ;;
  esac
  if [ "$case" = push ]; then
    # A push writes no archive: the budget is the image's, not the push's.
    printf '  %-36s read %9s  written %9s  total %9s\n' "$case" "$(mib "$r")" "$(mib "$w")" "$(mib $((r + w)))"
    continue
  fi
  budget=$(( 3 * layer + archives ))
  printf '  %-36s read %9s  written %9s  total %9s   budget %9s (3 x layer + archives %s)  x%s\n' "$case" "$(mib "$r")" "$(mib "$w")" "$(mib $((r + w)))" "$(mib "$budget")" "$(mib "$archives")" \
    "$(awk -v a=$((r + w)) -v b="$budget" 'BEGIN {printf "%.2f", a / b}')"
done
