# bench/loop-lib.sh: what the inner-loop benchmarks (image-loop.sh, python-app-loop.sh)
# share. Sourced with $work (the benchmark's scratch folder) set; the copy to measure in
# is $work/p.

# Starts a loopback docker-registry (when installed) storing in $work/registry: sets
# registry_pid and reference (127.0.0.1:PORT/bench/NAME), both empty without one.
start_registry() { # NAME
  registry_pid=
  reference=
  command -v docker-registry >/dev/null || return 0
  local port
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/registry" "$port" > "$work/registry.yml"
  docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  reference="127.0.0.1:$port/bench/$1"
}

measure() { # prints "WALL CPU" seconds of "$@" run in the copy
  (cd "$work/p" && /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
