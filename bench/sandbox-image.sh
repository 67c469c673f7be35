#!/usr/bin/env bash
# bench/sandbox-image: what the build sandbox costs the default image, in one run: a
# clean `redo-ts image.tar` and a one-line edit of app/greet.sh then `redo-ts image.tar`,
# with the specs as they are (build steps in the sandbox over targets/build-environment)
# and with `build-environment: host` added to busybox and greet (the unsandboxed
# baseline, which also skips building the environment's fragment). Runs interleaved,
# warm download and environment cache (the assembled root and the environment's kept
# fragment); prints the median CPU (user+sys of redo-ts and its children) with its
# min-max, the sandbox/host ratio of the medians, and the median wall of RUNS runs
# (default 5). On a loaded machine read the CPU.
# Usage: bench/sandbox-image.sh [RUNS]   (npm run build first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d /tmp/redo-ts-bench-sandbox-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
export REDO_TS_CACHE="$work/cache"
mkdir -p "$work/sandbox"
(cd "$repo" && git ls-files -z -- targets rules app image.yaml all.do package.json bin libexec | xargs -0 cp --parents -t "$work/sandbox")
ln -s "$repo/node_modules" "$work/sandbox/node_modules"
ln -s "$repo/dist" "$work/sandbox/dist"
cp -a "$work/sandbox" "$work/host"
for spec in busybox greet; do printf 'build-environment: host\n' >> "$work/host/targets/$spec.spec.yaml"; done

# CPU and wall seconds of one command, as "cpu wall".
measure() { /usr/bin/time -f '%U %S %e' -o "$work/time" "$@" >/dev/null 2>&1; awk '{ printf "%.2f %.2f\n", $1 + $2, $3 }' "$work/time"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { sort -n | awk '{ v[NR] = $1 } END { printf "%s-%s", v[1], v[NR] }'; }

for variant in sandbox host; do # warm-up: downloads, the assembled environment
  rm -rf "$work/w" && cp -a "$work/$variant" "$work/w" && (cd "$work/w" && node bin/redo-ts.js image.tar >/dev/null 2>&1)
done
for i in $(seq "$runs"); do
  for variant in sandbox host; do
    rm -rf "$work/w" && cp -a "$work/$variant" "$work/w"
    (cd "$work/w" && measure node bin/redo-ts.js image.tar) >> "$work/clean-$variant"
    printf '\necho "edit %s"\n' "$i" >> "$work/w/app/greet.sh"
    (cd "$work/w" && measure node bin/redo-ts.js image.tar) >> "$work/edit-$variant"
  done
done
printf '%-8s %-8s %9s %11s %9s\n' case variant 'cpu s' 'cpu min-max' 'wall s'
for case in clean edit; do
  for variant in sandbox host; do
    printf '%-8s %-8s %9s %11s %9s\n' "$case" "$variant" "$(cut -d' ' -f1 "$work/$case-$variant" | median)" "$(cut -d' ' -f1 "$work/$case-$variant" | spread)" "$(cut -d' ' -f2 "$work/$case-$variant" | median)"
  done
  printf '%-8s %-8s %8s%%\n' "$case" 'ratio' "$(paste -d' ' <(cut -d' ' -f1 "$work/$case-sandbox" | median) <(cut -d' ' -f1 "$work/$case-host" | median) | awk '{ printf "%+.0f", ($1 / $2 - 1) * 100 }')"
done
