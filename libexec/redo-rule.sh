# Sourced by `sh -e -c` (lib/engine/spawner.ts) with __redo_ts_libexec set, to run in this
# shell a plain sh rule ($0, with $1 $2 $3) that needs a process of its own (it names $0,
# $$ or $PPID): the redo-* commands become aliases first (redo-rule-functions.sh). Other
# plain rules are sourced by a subshell of the spawner itself (redo-spawner.sh).
. "$__redo_ts_libexec/redo-rule-functions.sh"
. "$0"
