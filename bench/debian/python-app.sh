#!/usr/bin/env bash
# bench/debian/python-app: examples/python-app against mmdebstrap, side by side in one run.
#   mmdebstrap    SOURCE_DATE_EPOCH=1700000000 mmdebstrap --variant=minbase --include=python3
#                 bookworm out.tar (Debian's reproducible rootfs builder; apt and dpkg do the work)
#   cold          a clean build of the example with an empty redo-ts cache (downloads included)
#   warm          a clean build (no .redo/, no fragments) with the cache the cold build filled
#   app change    one line appended to src/app.py, then `redo-ts`: time and layers rewritten
# Then it compares the file lists (bench/debian/compare-rootfs.mjs). Prints seconds and
# ratios. Usage: bench/debian/python-app.sh   (after npm run build; needs root or
# unprivileged user namespaces for mmdebstrap's default mode)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/redo-ts-bench-debian.XXXXXX)
trap 'rm -rf "$work"' EXIT
redo=(node "$repo/bin/redo-ts.js")
now_ms() { date +%s%3N; }
seconds() { awk -v ms="$1" 'BEGIN {printf "%.2f", ms / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }

copy() { # the example as a user copies it, plus the shared rules
  rm -rf "$work/app" && cp -r "$repo/examples/python-app" "$work/app" && cp -r "$repo/rules" "$work/app/rules"
}
build() { # wall ms of a build in the copy
  local t0 t1; t0=$(now_ms)
  (cd "$work/app" && REDO_TS_CACHE="$work/cache" "${redo[@]}" "$@" >/dev/null 2>"$work/err") || { tail -20 "$work/err"; exit 1; }
  t1=$(now_ms); echo $((t1 - t0))
}

t0=$(now_ms)
SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --variant=minbase --include=python3 bookworm "$work/mmdebstrap.tar" 2>"$work/mm.err" || { tail "$work/mm.err"; exit 1; }
mm=$(( $(now_ms) - t0 ))

copy; cold=$(build)
copy; warm=$(build)
before=$(cd "$work/app" && find targets -name '*.fragment.tar' -printf '%p %i\n' | sort)
printf '\n# one more line\n' >> "$work/app/src/app.py"
change=$(build)
after=$(cd "$work/app" && find targets -name '*.fragment.tar' -printf '%p %i\n' | sort)
rewritten=$(join <(echo "$before") <(echo "$after") | awk '$2 != $3 {print $1}' | tr '\n' ' ')

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), NODE_EXTRA_CA_CERTS $([ -n "${NODE_EXTRA_CA_CERTS:-}" ] && echo set || echo unset)"
printf '%-40s %8s %8s\n' 'build' 'wall s' 'ratio'
printf '%-40s %8s %8s\n' 'mmdebstrap minbase + python3' "$(seconds "$mm")" '1.00x'
printf '%-40s %8s %8s\n' 'python-app clean, cold cache' "$(seconds "$cold")" "$(ratio "$cold" "$mm")"
printf '%-40s %8s %8s\n' 'python-app clean, warm cache' "$(seconds "$warm")" "$(ratio "$warm" "$mm")"
printf '%-40s %8s %8s\n' 'python-app one-line app change' "$(seconds "$change")" "$(ratio "$change" "$mm")"
echo "layers rewritten by the app change: ${rewritten:-none}"
node "$repo/bench/debian/compare-rootfs.mjs" "$work/mmdebstrap.tar" "$work/app/targets/python.fragment.tar"
