#!/bin/bash
# Runs apenwarr/redo's own test suite (its t/ folder, kept outside this project) against
# redo-ts's redo commands, each test folder in a fresh copy, and prints PASS, FAIL or
# DIFFERS (a documented deliberate difference, docs/engine.md) per folder.
#
#   bash test/external/apenwarr-redo.sh PATH-TO-APENWARR-REDO   (a checkout, or its .git)
#
# Exit 0 when every folder passes or differs only where docs/engine.md says redo-ts
# differs on purpose; 1 otherwise. Build redo-ts first (`npm run build`). The suite
# is not in the project (no network in tests); the figures of the last run are in
# docs/engine.md.
#
# What the harness adapts, and why:
# - t/flush-cache edits apenwarr's sqlite database so a run forgets what it already
#   checked. Here it sends the engine the `flush-cache` call, which does the same
#   (lib/engine/client-requests.ts forgetSettledOutcomes).
# - ../../redo/sh and ../../redo/py (made by apenwarr's build) are /bin/sh and python3.
# - Where a test says "this file changed" with `touch`, the harness appends a byte:
#   redo-ts compares content, not times (docs/engine.md, deliberate difference 1).
# - Where a test greps apenwarr's wording of a warning ("a - you modified it"), the
#   harness greps redo-ts's wording of the same warning.
# - A check that tests a deliberate difference is turned into a line "DIFFERS: ..."
#   naming the difference, so the rest of that folder still runs.
set -u
suite=${1:?usage: apenwarr-redo.sh PATH-TO-APENWARR-REDO (a checkout or its .git folder)}
here=$(cd "$(dirname "$0")/../.." && pwd)
libexec=$here/libexec
[ -f "$here/dist/bundle/main.cjs" ] || { echo "apenwarr-redo.sh: build redo-ts first (npm run build)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/redo-ts-apenwarr.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src"
if [ -d "$suite/t" ]; then
  cp -a "$suite/t" "$src/t"
elif git -C "$suite" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$suite" archive HEAD t | tar -x -C "$src"
else
  echo "apenwarr-redo.sh: $suite has no t/ folder and is not a git repository" >&2
  exit 2
fi
commit=$(git -C "$suite" rev-parse --short HEAD 2>/dev/null || echo unknown)

mkdir -p "$src/redo"
ln -s /bin/sh "$src/redo/sh"
# A real interpreter, not a version manager's shim (those resolve by name and folder).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
ln -s "$py" "$src/redo/py"
rm -f "$src/t/flush-cache.do" "$src/t/flush-cache.in"
printf '#!/bin/sh\ncmd=flush-cache\nredo_libexec=%s\n. "$redo_libexec/redo-call.sh"\n' "$libexec" > "$src/t/flush-cache"
chmod +x "$src/t/flush-cache"

# differs FILE 'SED-EXPRESSION' 'WHY': a deliberate difference, applied before the run.
differs() {
  local file=$src/t/$1
  [ -f "$file" ] || { echo "apenwarr-redo.sh: $1 is not in this version of the suite" >&2; return; }
  sed -i "$2" "$file"
}
# Content, not times: `touch` of an existing input is "no change" to redo-ts.
differs 350-deps/doublestatic.do 's/^touch static.in$/printf . >>static.in/'
differs 350-deps/basic/test.do 's/^touch 1.in$/printf . >>1.in/'
# Wording of the "modified by hand" warning.
differs 350-deps/override/all.do 's/grep "a - "/grep "override\/a\\": modified since"/'
differs 351-deps-forget/all.do 's/qgrep "you modified it"/qgrep "modified since redo-ts built it"/'
# A target whose rule vanished keeps its record and is served with a warning
# (ERR_RULE_MISSING), so its unchanged bytes do not rebuild its dependents.
differs 350-deps/gentest.do 's/|| exit 77/|| echo "DIFFERS: a target whose rule vanished is not a new source (docs\/engine.md: ERR_RULE_MISSING)" >\&2/'
# Content, not times: rebuilding a symlink target to the same bytes, or replacing the
# symlink by its target file, is no change to its dependents; a changed file behind a
# symlink changes the dependents but is a hand edit of the symlink target, not rebuilt.
for code in 113 14 16 117; do
  differs 360-symlinks/all.do "s/|| exit *$code\$/|| echo \"DIFFERS ($code): content, not symlink identity or times (docs\/engine.md)\" >\&2/"
done

# Folders whose every check rests on a deliberate difference, with the reason.
declare -A expected_failure=(
  [351-deps-forget]='redo-sources/redo-targets list what saved records say (a running rule'"'"'s own calls are saved when it ends; targets without output are not listed, as redo-targets.md says); content hashes, not change marks'
  [999-installer]='installs apenwarr'"'"'s own redo (not a behaviour of redo)'
)

export PATH=$libexec:$PATH
unset REDO_RUN_DIR REDO_PARENT
pass=0 fail=0 differ=0
for test in $(cd "$src/t" && ls -d [0-9s]*/ | tr -d /); do
  copy=$work/run-$test
  cp -a "$src" "$copy"
  log=$work/$test.log
  ( cd "$copy/t" && timeout 300 redo "$test/all" ) >"$log" 2>&1
  status=$?
  notes=$(grep -c '^DIFFERS' "$log")
  if [ -n "${expected_failure[$test]:-}" ]; then
    if [ "$status" -ne 0 ]; then
      echo "DIFFERS $test: ${expected_failure[$test]}"
      differ=$((differ + 1))
    else
      echo "PASS    $test (listed as differing: update this script)"
      pass=$((pass + 1))
    fi
  elif [ "$status" -eq 0 ]; then
    echo "PASS    $test${notes:+$( [ "$notes" -gt 0 ] && echo " ($notes deliberate differences noted)")}"
    pass=$((pass + 1))
  else
    echo "FAIL    $test (exit $status); last lines:"
    tail -n 8 "$log" | sed 's/^/          /'
    fail=$((fail + 1))
  fi
  rm -rf "$copy"
done
echo "apenwarr/redo $commit t/: $pass passed, $differ differ on purpose, $fail failed"
[ "$fail" -eq 0 ]
