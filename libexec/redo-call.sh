# Sourced by the redo-* scripts with $cmd and $redo_libexec (this folder) set: sends one call to the running redo-ts
# engine through its request FIFO and exits with the engine's answer. No Node start-up
# per call, and no process but this sh in the common case. Outside a build, runs the
# redo-ts CLI instead. Protocol: lib/engine/server.ts.
# The client is the function __redo_ts_client; redo-rule-functions.sh sources this file
# once with __redo_ts_define_only set (the function only), so a call in a rule's shell
# costs a fork, not also a read and parse of this file.
__redo_ts_client() {
  # This client's pid: $$, or, when redo-rule.sh runs it in a subshell, the subshell's.
  redo_self=${redo_self:-$$}
  if [ -z "$REDO_RUN_DIR" ] || [ -z "$REDO_PARENT" ]; then
    exec "${REDO_NODE:-node}" "$redo_libexec/../bin/redo-ts.js" "$cmd" "$@"
  fi
  if [ ! -p "$REDO_RUN_DIR/fifo" ]; then
    # A rule of a build that was killed: starting a new build from here would race the next one.
    echo "redo-$cmd: the redo-ts build that started this rule is gone ($REDO_RUN_DIR)" >&2
    exit 2
  fi
  # Claim the rule's own reply FIFO (noclobber create is atomic); if another call of the
  # same rule holds it, make a private one.
  redo_reply=$REDO_PARENT
  set -C
  if [ ! -p "$REDO_RUN_DIR/r.$redo_reply" ] || ! true 2>/dev/null >"$REDO_RUN_DIR/c.$redo_reply"; then
    redo_reply=$redo_self
    mkfifo -m 600 "$REDO_RUN_DIR/r.$redo_reply" || exit 2
  fi
  set +C
  # Open the reply FIFO read-write before asking, so the engine's reply always has a reader.
  exec 3<>"$REDO_RUN_DIR/r.$redo_reply"
  if [ "$redo_reply" = "$REDO_PARENT" ]; then
    # The engine holds the rule's own reply FIFO open for writing while the rule runs: read
    # it through a read-only descriptor, so a dead engine (kill -9) is an end of file.
    exec 4<"$REDO_RUN_DIR/r.$redo_reply" 3<&-
  else
    # A private reply FIFO has no writer of the engine's until it answers: watch the engine's
    # pid (in the run folder's name) instead, and answer for it if it dies.
    redo_engine=${REDO_RUN_DIR##*/}
    redo_engine=${redo_engine#redo-ts-}
    redo_engine=${redo_engine%%-*}
    (
      trap 'kill "$redo_sleep" 2>/dev/null; exit 0' TERM
      while kill -0 "$redo_engine" 2>/dev/null; do
        sleep 1 &
        redo_sleep=$!
        wait "$redo_sleep"
      done
      echo "$redo_self gone" >&3
    ) >/dev/null 2>&1 &
    redo_watch=$!
    exec 4<&3
  fi
  # Names are relative to the caller's folder: send it first (redo-stamp sends data).
  [ "$cmd" = stamp ] || set -- "$PWD" "$@"
  # A rule this call starts inherits the caller's exported variables and umask (builtins
  # only, no fork); the engine reads and deletes v.$redo_self.
  case $cmd in
    ifchange | redo) { export -p; umask; } > "$REDO_RUN_DIR/v.$redo_self" || exit 2 ;;
  esac
  redo_args="$*"
  redo_nl='
'
  case "$cmd:$redo_args" in
    stamp:* | *"$redo_nl"*) redo_inline=false ;;
    *) [ "${#redo_args}" -lt 3000 ] && redo_inline=true || redo_inline=false ;;
  esac
  if $redo_inline; then
    # One printf, so one write(2) of under PIPE_BUF bytes: atomic among concurrent clients.
    # Opened read-write: never blocks, even when the engine that read it is dead.
    printf '%s\0' "$cmd $redo_self $REDO_PARENT $redo_reply inline" "$@" "$redo_nl" 1<>"$REDO_RUN_DIR/fifo" || exit 2
  else
    if [ "$cmd" = stamp ]; then
      cat > "$REDO_RUN_DIR/q.$redo_self" || exit 2
    elif [ "$#" -eq 0 ]; then
      : > "$REDO_RUN_DIR/q.$redo_self" || exit 2
    else
      printf '%s\0' "$@" > "$REDO_RUN_DIR/q.$redo_self" || exit 2
    fi
    printf '%s %s %s %s\n' "$cmd" "$redo_self" "$REDO_PARENT" "$redo_reply" 1<>"$REDO_RUN_DIR/fifo" || exit 2
  fi
  # Answers are "<pid> <status>": one left by a killed earlier call of this rule is skipped.
  redo_status=
  while IFS=' ' read -r redo_for redo_answer <&4; do
    [ "$redo_for" != "$redo_self" ] || { redo_status=$redo_answer; break; }
  done
  exec 3<&- 4<&-
  [ -z "${redo_watch:-}" ] || kill "$redo_watch" 2>/dev/null
  case $redo_status in
    '' | gone)
      echo "redo-$cmd: the redo-ts build that started this rule is gone ($REDO_RUN_DIR)" >&2
      exit 2 ;;
  esac
  exit "$redo_status"
}
[ -n "${__redo_ts_define_only:-}" ] || __redo_ts_client "$@"
