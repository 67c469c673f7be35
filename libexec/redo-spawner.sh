# Started once per build by the engine (lib/engine/spawner.ts): starts sh rules for it,
# because a dash fork costs a fraction of a Node spawn and builds run many small rules.
# $1 is the run directory. Each stdin line "<id> <command>" starts <command> in the
# background with stdout in o.<id> and stderr in e.<id>, and answers "<id> pid <pid>";
# the background subshell writes "<id> <status>" on fd 9 when the rule exits. A line
# "<id>" alone takes the command from the file j.<id>; an empty line does nothing but
# lets sh reap finished rules, so the engine can tell a rule killed by a signal.
# Exits when stdin closes (the engine is gone); running rules finish on their own.
cd "$1" || exit 1
exec 9>&1
while IFS= read -r redo_line; do
  [ -n "$redo_line" ] || continue
  redo_id=${redo_line%% *}
  if [ "$redo_id" = "$redo_line" ]; then
    . "./j.$redo_id" </dev/null >"o.$redo_id" 2>"e.$redo_id" &
  else
    eval "${redo_line#* }" </dev/null >"o.$redo_id" 2>"e.$redo_id" &
  fi
  echo "$redo_id pid $!"
done
