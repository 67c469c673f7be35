# Sourced by the redo-* scripts with $cmd set: sends one call to the running redo-ts
# engine through its request FIFO and exits with the engine's answer. No Node start-up
# per call. Outside a build, runs the redo-ts CLI instead. Protocol: lib/engine/server.ts.
if [ -z "$REDO_RUN_DIR" ] || [ -z "$REDO_PARENT" ] || [ ! -p "$REDO_RUN_DIR/fifo" ]; then
  exec "${REDO_NODE:-node}" "${0%/*}/../bin/redo-ts.js" "$cmd" "$@"
fi
redo_q="$REDO_RUN_DIR/q.$$"
redo_r="$REDO_RUN_DIR/r.$$"
if [ "$cmd" = stamp ]; then
  cat > "$redo_q" || exit 2
elif [ "$#" -eq 0 ]; then
  : > "$redo_q" || exit 2
else
  printf '%s\0' "$@" > "$redo_q" || exit 2
fi
mkfifo -m 600 "$redo_r" || exit 2
# Open the reply FIFO read-write before asking, so the engine's reply always has a reader.
exec 3<>"$redo_r"
printf '%s %s %s\n' "$cmd" "$$" "$REDO_PARENT" > "$REDO_RUN_DIR/fifo" || exit 2
IFS= read -r redo_status <&3
exec 3<&-
exit "${redo_status:-2}"
