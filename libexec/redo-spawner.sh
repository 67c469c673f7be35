# Started once per build by the engine (lib/engine/spawner.ts): starts sh rules for it.
# A dash fork costs a fraction of a Node spawn, which is what a build of many small
# rules pays for. Reads job ids on stdin; for each, runs the job file j.<id> in the
# run directory $1 in a background subshell and writes "<id> <status>" to stdout.
# Exits when stdin closes (the engine is gone); running rules finish on their own.
redo_jobs=$1
while IFS= read -r redo_id; do
  { . "$redo_jobs/j.$redo_id"; echo "$redo_id $?"; } &
done
