#!/usr/bin/env bash
# bench/app-deps: the app examples built by redo-ts from their lock files (installs in
# the build sandbox), each beside `podman build` of the Dockerfile a team would write for
# the same image:
#   examples/express-app (express 4.21.2, 72 npm packages, Debian's nodejs): FROM the
#     same nodejs layer, npm ci --omit=dev in a RUN step with the machine's registry and CA;
#   examples/flask-app (Flask 3.1.3 and 6 wheels, Debian's python3): FROM the same
#     python3 layer, pip install --no-index --require-hashes of the same wheels (downloaded
#     beforehand with the machine's pip configuration, as redo-ts's cache is) in a RUN step,
#     with the machine's pip bind-mounted (Debian's python3 layer has none).
# Prints wall and CPU seconds (medians of RUNS runs, default 3) for a clean build (sources
# already downloaded / podman's base present), a build with nothing changed, and a build
# after a one-line edit of the app's code, and the size of each image. Needs podman, the
# machine's npm and pip configuration, and a warm enough apt to lock the Debian specs.
# Usage: bench/app-deps.sh [RUNS] [EXAMPLE...]   (examples: express-app flask-app)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
shift || true
examples=("$@")
[ ${#examples[@]} -eq 0 ] && examples=(express-app flask-app)
work=$(mktemp -d /tmp/redo-ts-bench-appdeps.XXXXXX)
podman_root="$work/podman"
podman=(podman --root "$podman_root/root" --runroot "$podman_root/runroot" --storage-driver vfs
  --cgroup-manager cgroupfs --runtime runc --events-backend file --tmpdir "$podman_root/tmp")
mkdir -p "$podman_root/tmp"
cleanup() { "${podman[@]}" system reset --force >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
# The source cache: a fresh one unless given (the warm-up fills it either way).
export REDO_TS_CACHE=${REDO_TS_CACHE:-$work/cache}
redo=(node "$repo/bin/redo-ts.js")

# "wall cpu" seconds of "$@" run in $1, children included (GNU time).
timed() {
  local dir=$1; shift
  (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$work/time"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# What differs between the examples: the image, its base layer, the file a one-line edit
# touches (and its comment sign), and the Dockerfile's context.
setup_example() {
  case $1 in
    express-app) image=express base=node code=server.js comment='//' ;;
    flask-app) image=flask base=python code=hello.py comment='#' ;;
    *) echo "bench/app-deps.sh: unknown example $1 (express-app, flask-app)" >&2; exit 2 ;;
  esac
}

copy() { # a fresh copy of the example, rules in deploy/, the Debian locks the warm-up refreshed
  rm -rf "$work/x" && cp -a "$repo/examples/$example" "$work/x" && cp -r "$repo/rules" "$work/x/deploy/"
  cp "$work/locks-$example"/*.lock.yaml "$work/x/deploy/targets/"
}

docker_context() {
  rm -rf "$work/d" && mkdir -p "$work/d" && cp -a "$repo/examples/$example/app" "$work/d/app"
  case $example in
    express-app)
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
      ;;
    flask-app)
      cp -a "$work/wheels" "$work/d/wheels"
      cp -a "$(python3 -c 'import os, pip; print(os.path.dirname(pip.__file__))')" "$work/d/pip"
      cat >"$work/d/Dockerfile" <<'EOF'
FROM localhost/bench/python-base
WORKDIR /app
COPY app/requirements.txt ./
RUN --mount=type=bind,source=pip,target=/pip/pip --mount=type=bind,source=wheels,target=/wheels ["/usr/bin/python3", "/pip/pip", "install", "--no-index", "--find-links=/wheels", "--require-hashes", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--target=/app/packages", "-r", "requirements.txt"]
COPY app/hello.py ./
ENV PYTHONPATH=/app/packages LANG=C.UTF-8
CMD ["/usr/bin/python3", "/app/hello.py"]
EOF
      ;;
  esac
}

for example in "${examples[@]}"; do
  setup_example "$example"
  # Warm up: lock the Debian specs once (the mirror may have moved on), fill the source cache.
  mkdir -p "$work/locks-$example" && cp "$repo/examples/$example/deploy/targets/"*.lock.yaml "$work/locks-$example/"
  copy
  (cd "$work/x/deploy" && "${redo[@]}" lock >/dev/null 2>&1 && "${redo[@]}" >/dev/null 2>"$work/err") || { cat "$work/err"; exit 1; }
  cp "$work/x/deploy/targets/"*.lock.yaml "$work/locks-$example/"
  "${podman[@]}" import "$work/x/deploy/targets/$base.fragment.tar" "localhost/bench/$base-base" >/dev/null 2>&1
  if [ "$example" = flask-app ]; then
    python3 -m pip download --quiet --retries 0 --timeout 10 --no-deps --require-hashes --only-binary=:all: --dest "$work/wheels" -r "$repo/examples/flask-app/app/requirements.txt"
  fi
  build_args=(build --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host -t "localhost/bench/$image-docker" .)

  r_clean=() r_noop=() r_edit=() p_clean=() p_noop=() p_edit=()
  for i in $(seq "$runs"); do
    copy
    r_clean+=("$(timed "$work/x/deploy" "${redo[@]}")")
    # Stats younger than two seconds are not trusted by the no-op memo: as after a pause.
    sleep 2.1
    r_noop+=("$(timed "$work/x/deploy" "${redo[@]}")")
    echo "$comment edit $i" >>"$work/x/app/$code"
    r_edit+=("$(timed "$work/x/deploy" "${redo[@]}")")

    docker_context
    p_clean+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}" --no-cache)")
    p_noop+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}")")
    echo "$comment edit $i" >>"$work/d/app/$code"
    p_edit+=("$(timed "$work/d" "${podman[@]}" "${build_args[@]}")")
  done

  ours=$(stat -c %s "$work/x/deploy/targets/$image.tar")
  "${podman[@]}" save -o "$work/docker.tar" "localhost/bench/$image-docker" >/dev/null 2>&1
  theirs=$(stat -c %s "$work/docker.tar")
  rm -f "$work/docker.tar"
  echo "examples/$example, medians of $runs runs (wall s, CPU s incl. children)"
  printf '%-28s %-16s %-16s\n' case redo-ts 'podman build'
  printf '%-28s %-16s %-16s\n' 'clean (sources downloaded)' "$(printf '%s\n' "${r_clean[@]}" | median)" "$(printf '%s\n' "${p_clean[@]}" | median)"
  printf '%-28s %-16s %-16s\n' 'nothing changed' "$(printf '%s\n' "${r_noop[@]}" | median)" "$(printf '%s\n' "${p_noop[@]}" | median)"
  printf '%-28s %-16s %-16s\n' "one-line edit of $code" "$(printf '%s\n' "${r_edit[@]}" | median)" "$(printf '%s\n' "${p_edit[@]}" | median)"
  printf '%-28s %-16s %-16s\n' 'image (docker archive bytes)' "$ours" "$theirs"
done
