#!/bin/sh
# Engine benchmark: redo-ts against GNU make -r on the tree generate.sh makes (1000
# sources, 1000 leaves, 32 aggregates, all), with `node -e 0` (the floor of any Node
# command) measured in the same run. Prints the median wall time and the CPU time of
# each scenario, then the no-op and the clean build beside make -r and node -e 0.
# When NODE_EXTRA_CA_CERTS is set (it adds to every Node start), the no-op, the clean
# build and node -e 0 are measured a second time without it in the same run.
# Usage: bench/engine/run.sh [RUNS] [quick]   (RUNS for the quick scenarios, default 10;
# full builds run max(3, RUNS/3) times; `quick` measures only the clean build and the
# no-op). Needs hyperfine, make and a C compiler (cc): every command runs under
# reap-all.c, which waits for all the processes it leaves, so CPU times include
# redo-ts's rules (its rule spawner outlives the CLI by a moment and would otherwise
# take their CPU time with it).
set -e
runs=${1:-10}
scope=${2:-all}
full_runs=$((runs / 3))
[ "$full_runs" -ge 3 ] || full_runs=3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/redo-ts-bench-engine.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/generate.sh" "$work/redo" >/dev/null
"$here/generate.sh" "$work/make" >/dev/null
cc -O2 -o "$work/reap-all" "$here/reap-all.c"
reap=$work/reap-all
redo="$reap node $repo/bin/redo-ts.js"
json="$work/json"
mkdir -p "$json"

bench() { # NAME DIR RUNS PREPARE COMMAND
  (cd "$2" && hyperfine --style none --runs "$3" --prepare "$4" --export-json "$json/$1.json" "$5" >/dev/null 2>&1)
}
# The same without NODE_EXTRA_CA_CERTS (as NAME-noca), when it is set.
bench_noca() { # NAME DIR RUNS PREPARE COMMAND
  [ -n "${NODE_EXTRA_CA_CERTS:-}" ] || return 0
  (cd "$2" && env -u NODE_EXTRA_CA_CERTS hyperfine --style none --runs "$3" --prepare "$4" --export-json "$json/$1-noca.json" "$5" >/dev/null 2>&1)
}

# Full builds (each run starts from a clean tree).
bench redo-full "$work/redo" "$full_runs" 'rm -rf .redo *.leaf *.agg' "$redo all"
bench make-full "$work/make" "$full_runs" 'rm -f *.leaf *.agg all' "$reap make -r -s all"
bench_noca redo-full "$work/redo" "$full_runs" 'rm -rf .redo *.leaf *.agg' "$redo all"
if [ "$scope" != quick ]; then
  bench redo-full-j2 "$work/redo" "$full_runs" 'rm -rf .redo *.leaf *.agg' "$redo -j2 all"
  bench make-full-j2 "$work/make" "$full_runs" 'rm -f *.leaf *.agg all' "$reap make -r -s -j2 all"
fi
# Incremental runs start from a complete build.
(cd "$work/redo" && $redo all 2>/dev/null)
(cd "$work/make" && make -r -s all)
# The second run writes .redo/no-op.json once the outputs are older than its racy window.
sleep 2.2
(cd "$work/redo" && $redo all 2>/dev/null)
bench redo-noop "$work/redo" "$runs" 'true' "$redo all"
bench make-noop "$work/make" "$runs" 'true' "$reap make -r -s all"
bench node-noop "$work/redo" "$runs" 'true' "$reap node -e 0"
bench_noca redo-noop "$work/redo" "$runs" 'true' "$redo all"
bench_noca node-noop "$work/redo" "$runs" 'true' "$reap node -e 0"
if [ "$scope" = quick ]; then
  node "$here/summary.mjs" "$json"
  exit 0
fi
bench redo-touch "$work/redo" "$runs" 'touch s0500.src' "$redo all"
bench make-touch "$work/make" "$runs" 'touch s0500.src' "$reap make -r -s all"
bench redo-change "$work/redo" "$runs" 'date +%s%N > s0500.src' "$redo all"
bench make-change "$work/make" "$runs" 'date +%s%N > s0500.src' "$reap make -r -s all"

node "$here/summary.mjs" "$json"
