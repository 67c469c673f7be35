# Started once per build by the engine (lib/engine/spawner.ts): starts sh rules for it.
# A dash fork costs a fraction of a Node spawn, which is what a build of many small
# rules pays for. Reads "<id> <command>" lines on stdin (or "<id>" alone, the command
# then being in the file j.<id> of the run directory $1); runs each in a background
# subshell and writes "<id> <status>" to stdout. Exits when stdin closes (the engine
# is gone); running rules finish on their own.
redo_jobs=$1
while IFS= read -r redo_line; do
  redo_id=${redo_line%% *}
  if [ "$redo_id" = "$redo_line" ]; then
    { . "$redo_jobs/j.$redo_id"; echo "$redo_id $?"; } &
  else
    { eval "${redo_line#* }"; echo "$redo_id $?"; } &
  fi
done
