#!/usr/bin/env bash
# bench/debian/mmdebstrap: the five package sets of issue 21 (python3, curl +
# ca-certificates, nginx-light, openjdk-17-jre-headless, redis-server), each built by
# mmdebstrap and by redo-ts and compared path by path (test/e2e/debian-mmdebstrap.test.ts);
# prints each set's package count, times (mmdebstrap; redo-ts lock + build; rebuild) and
# the differences docs/debian.md explains. Usage: bench/debian/mmdebstrap.sh (after
# npx tsc -p tsconfig.json; needs mmdebstrap and the machine's apt indexes). About 3.6
# minutes of CPU (mmdebstrap included) and 17 minutes of wall time on a loaded 2-core
# machine (2026-12-07), most of it mmdebstrap downloading every package of every set.
# The suite runs the same five sets (REDO_TS_MMDEBSTRAP_SETS=quick: the first two only).
set -euo pipefail
cd "$(dirname "$0")/../.."
REDO_TS_MMDEBSTRAP_SETS=${REDO_TS_MMDEBSTRAP_SETS:-all} exec npx vitest run test/e2e/debian-mmdebstrap.test.ts
