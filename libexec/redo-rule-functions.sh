# Sourced by the rule spawner (redo-spawner.sh, whose subshells source plain sh rules) and by
# redo-rule.sh, with __redo_ts_libexec set: redo-ifchange, redo, redo-ifcreate, redo-always,
# redo-stamp and redo-ifchange-env become aliases of a function that runs the client
# (__redo_ts_client, from redo-call.sh) in a subshell, a fork where the commands in this
# folder cost a fork and a dash start per call. Uses the aliases cannot reach (quoted,
# `exec redo-ifchange`, `xargs redo-ifchange`, a rule's own `sh -c`) run those commands,
# as before.
__redo_ts_call() (
  # The client runs as a script would: none of the rule's -e, -u, -x, -v, and the usual IFS.
  set +euxv
  IFS=' 	
'
  # Its own pid names its request and reply ($$ would be the rule's, shared by parallel calls):
  # /proc/self entered as a folder (a chdir and a getcwd), then back to the caller's logical
  # $PWD. dash's `read` takes /proc/self/stat one byte per system call (about 300); it stays
  # for a caller whose folder is gone or is not the one $PWD names.
  redo_cwd=$PWD
  if [ "$redo_cwd" -ef . ] && cd -P /proc/self 2>/dev/null; then
    redo_self=${PWD##*/}
    cd "$redo_cwd" 2>/dev/null || { echo "redo-$1: cannot return to the caller's folder $redo_cwd" >&2; exit 2; }
  else
    read -r redo_self _ </proc/self/stat 2>/dev/null || redo_self=$$
  fi
  cmd=$1
  shift
  redo_libexec=$__redo_ts_libexec
  __redo_ts_client "$@"
)
# The client itself, defined once here (read and parsed once per shell, not per call).
__redo_ts_define_only=1
. "$__redo_ts_libexec/redo-call.sh"
unset __redo_ts_define_only
alias redo-ifchange='__redo_ts_call ifchange' redo='__redo_ts_call redo' redo-ifcreate='__redo_ts_call ifcreate'
alias redo-always='__redo_ts_call always' redo-stamp='__redo_ts_call stamp' redo-ifchange-env='__redo_ts_call ifchange-env'
