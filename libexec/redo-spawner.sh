# Started once per build by the engine (lib/engine/spawner.ts): starts sh rules for it,
# because a dash fork costs a fraction of a Node spawn and builds run many small rules.
# $1 is the run directory; $2 the `sh -c` text that runs a plain sh rule in a shell of its
# own (redo-rule.sh), which command lines name as "$redo_rule_c". Each stdin line
# "<id> <command>" starts <command> in the background (a job) with stdout in o.<id> and
# stderr in e.<id>; the job writes "<id> <status>" on fd 9 when the rule exits (from its
# EXIT trap when it sources the rule itself). A line "<id>" alone takes the command from
# the file j.<id>. An empty line (the engine's liveness check, once a second) answers
# "pids <id>:<pid>..." for the jobs started since the last one (not a line per job: that
# would wake the engine once more per rule) and lets sh reap finished jobs, so the engine
# can tell one gone without a status; "wait <id> <pid>" then answers "<id> <status>" with
# the status sh kept for it.
# A line "exit" ends it. When stdin ends without one, the engine died (kill -9): every
# process whose environment names this run directory (rules, what they started, their
# waiting redo-ifchange clients) gets SIGTERM, then SIGKILL a second later, and the run
# directory is removed.
# Ctrl-C reaches the whole process group: the engine, not this shell, decides what stops.
trap '' INT
# Sourced by `sh -c` with redo_spawner naming this file (spawner.ts), so that $0, which dash
# starts its messages with, is "sh"; run as a script, this file names itself.
redo_spawner=${redo_spawner:-$0}
redo_run_dir=$1
redo_rule_c=$2
# A plain sh rule is sourced by a subshell of this shell: no exec of sh per rule. The
# redo-* commands are aliases in it (redo-rule-functions.sh), and a command line runs it,
# in the job itself when its text names neither trap nor exec, as
#   trap 'command echo <id> $? >&9' EXIT; cd DIR && ... || exit; __redo_ts_enter; set -e -- $1 $2 $3; . RULE
# else in a subshell of the job, which reports its status, as
#   ( __redo_ts_enter; set -e -- $1 $2 $3; . RULE ) 9>&-
# __redo_ts_enter removes this shell's own variables, which the rule must not see.
__redo_ts_libexec=${redo_spawner%/*}
. "$__redo_ts_libexec/redo-rule-functions.sh"
__redo_ts_enter() {
  unset redo_spawner redo_run_dir redo_rule_c redo_line redo_id redo_started
}
redo_started=
cd "$1" || exit 1
exec 9>&1
while IFS= read -r redo_line; do
  if [ -z "$redo_line" ]; then
    [ -z "$redo_started" ] || echo "pids$redo_started"
    redo_started=
    continue
  fi
  [ "$redo_line" != exit ] || exit 0
  case $redo_line in
    'wait '*)
      # "wait <id> <pid>": a job gone without a word (a rule that, in a file it sourced,
      # exec'd or set its own EXIT trap): its exit status, which sh kept for `wait`.
      redo_id=${redo_line#wait }
      wait "${redo_id#* }"
      echo "${redo_id%% *} $?"
      continue ;;
  esac
  redo_id=${redo_line%% *}
  if [ "$redo_id" = "$redo_line" ]; then
    . "./j.$redo_id" </dev/null >"o.$redo_id" 2>"e.$redo_id" &
  else
    eval "${redo_line#* }" </dev/null >"o.$redo_id" 2>"e.$redo_id" &
  fi
  redo_started="$redo_started $redo_id:$!"
done
exec 9>&-
cd / || exit 1
for redo_signal in TERM TERM KILL; do
  redo_pids=$(grep -lzxF "REDO_RUN_DIR=$redo_run_dir" /proc/[0-9]*/environ 2>/dev/null | sed -n 's,^/proc/\([0-9]*\)/environ$,\1,p' | grep -vx "$$")
  [ -n "$redo_pids" ] || break
  # shellcheck disable=SC2086
  kill -s "$redo_signal" $redo_pids 2>/dev/null
  sleep 0.5
done
rm -rf "$redo_run_dir"
