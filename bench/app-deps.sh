#!/usr/bin/env bash
# bench/app-deps: examples/express-app (express 4.21.2, 72 npm packages, Debian's nodejs)
# built by redo-ts from its package-lock.json, beside `podman build` of the equivalent
# Dockerfile (the same nodejs layer as its base, `npm ci --omit=dev` in a RUN step with
# the machine's registry and CA). Prints wall and CPU seconds (medians of RUNS runs,
# default 3) for a clean build (sources already downloaded / podman's base present), a
# build with nothing changed, and a build after a one-line edit of app/server.js, and
# the size of each image. Needs podman, the machine's npm configuration, and a warm
# enough apt to lock nodejs. Usage: bench/app-deps.sh [RUNS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/redo-ts-bench-appdeps.XXXXXX)
podman_root="$work/podman"
podman=(podman --root "$podman_root/root" --runroot "$podman_root/runroot" --storage-driver vfs
  --cgroup-manager cgroupfs --runtime runc --events-backend file --tmpdir "$podman_root/tmp")
mkdir -p "$podman_root/tmp"
cleanup() { "${podman[@]}" system reset --force >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export REDO_TS_CACHE="$work/cache"
redo=(node "$repo/bin/redo-ts.js")

copy() { # a fresh copy of the example, rules in deploy/
  rm -rf "$work/x" && cp -a "$repo/examples/express-app" "$work/x" && cp -r "$repo/rules" "$work/x/deploy/"
  [ -f "$work/node.lock.yaml" ] && cp "$work/node.lock.yaml" "$work/x/deploy/targets/"
  return 0
}
# "wall cpu" seconds of "$@" run in $1, children included (GNU time).
timed() {
  local dir=$1; shift
  (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$work/time"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# Warm up: lock nodejs once (the mirror may have moved on), fill the source cache.
copy
(cd "$work/x/deploy" && "${redo[@]}" lock >/dev/null 2>&1 && "${redo[@]}" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
cp "$work/x/deploy/targets/node.lock.yaml" "$work/node.lock.yaml"
"${podman[@]}" import "$work/x/deploy/targets/node.fragment.tar" localhost/bench/node-base >/dev/null 2>&1

# The Dockerfile a team would write for the same image.
docker_context() {
  rm -rf "$work/d" && mkdir -p "$work/d" && cp -a "$repo/examples/express-app/app" "$work/d/app"
  cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$work/d/npm"
  cp /etc/ssl/certs/ca-certificates.crt "$work/d/ca.crt"
  printf 'registry=%s\ncafile=/ca.crt\naudit=false\nfund=false\nupdate-notifier=false\n' "$(npm config get registry)" >"$work/d/npmrc"
  cat >"$work/d/Dockerfile" <<'EOF'
FROM localhost/bench/node-base
COPY npm /usr/lib/npm
WORKDIR /app
COPY app/package.json app/package-lock.json ./
RUN --mount=type=bind,source=ca.crt,target=/ca.crt --mount=type=bind,source=npmrc,target=/npmrc ["/usr/bin/node", "/usr/lib/npm/bin/npm-cli.js", "ci", "--omit=dev", "--userconfig=/npmrc", "--cache=/tmp/npm-cache"]
COPY app/server.js ./
CMD ["/usr/bin/node", "/app/server.js"]
EOF
}
build_args=(build --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host -t localhost/bench/express-docker .)

r_clean=() r_noop=() r_edit=() p_clean=() p_noop=() p_edit=()
for i in $(seq "$runs"); do
  copy
  r_clean+=("$(timed "$work/x/deploy" "${redo[@]}")")
  r_noop+=("$(timed "$work/x/deploy" "${redo[@]}")")
  echo "// edit $i" >>"$work/x/app/server.js"
  r_edit+=("$(timed "$work/x/deploy" "${redo[@]}")")

  docker_context
  p_clean+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}" --no-cache)")
  p_noop+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}")")
  echo "// edit $i" >>"$work/d/app/server.js"
  p_edit+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}")")
done

ours=$(stat -c %s "$work/x/deploy/targets/express.tar")
"${podman[@]}" save -o "$work/docker.tar" localhost/bench/express-docker >/dev/null 2>&1
theirs=$(stat -c %s "$work/docker.tar")
echo "examples/express-app, medians of $runs runs (wall s, CPU s incl. children)"
printf '%-28s %-16s %-16s\n' case redo-ts 'podman build'
printf '%-28s %-16s %-16s\n' 'clean (sources downloaded)' "$(printf '%s\n' "${r_clean[@]}" | median)" "$(printf '%s\n' "${p_clean[@]}" | median)"
printf '%-28s %-16s %-16s\n' 'nothing changed' "$(printf '%s\n' "${r_noop[@]}" | median)" "$(printf '%s\n' "${p_noop[@]}" | median)"
printf '%-28s %-16s %-16s\n' 'one-line edit of server.js' "$(printf '%s\n' "${r_edit[@]}" | median)" "$(printf '%s\n' "${p_edit[@]}" | median)"
printf '%-28s %-16s %-16s\n' 'image (docker archive bytes)' "$ours" "$theirs"
