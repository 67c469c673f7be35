#!/usr/bin/env bash
# bench/registry: edit + rebuild + push of the default image to a loopback
# docker-registry, beside `skopeo copy oci-archive:... docker://...` of the same image
# in the same run, and a fresh clone with an empty source cache building image.tar
# through the remote cache vs from scratch. hyperfine prints the figures.
# Usage: bench/registry.sh [RUNS]   (run `npm ci` or `npm run build` first; needs
# docker-registry, skopeo, hyperfine)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
work=$(mktemp -d /tmp/redo-ts-bench-registry.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export REDO_TS_CACHE="$work/cache"

port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
address=127.0.0.1:$port
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $address
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://$address/v2/" >/dev/null && break; sleep 0.1; done

copy() { # copy DIR: the tracked files, as a clone after npm ci
  rm -rf "$1" && mkdir -p "$1"
  (cd "$repo" && git ls-files -z | xargs -0 cp -P --parents -t "$1")
  ln -s "$repo/node_modules" "$1/node_modules"
  ln -s "$repo/dist" "$1/dist"
}
redo="node $repo/bin/redo-ts.js"
copy "$work/p"
cd "$work/p"
$redo push image.tar "$address/bench/hello:1" >/dev/null 2>&1
echo "first push of the default image:"
$redo push image.tar "$address/bench/hello:1" | tail -1

# One line of the app changes before each push (a counter keeps every edit new).
edit='n=$(cat .n 2>/dev/null || echo 0); n=$((n+1)); echo $n > .n; sed -i "\$s/.*/# edit $n/" app/greet.sh'
printf '\n# edit 0\n' >> app/greet.sh
$redo image.tar >/dev/null 2>&1
echo "after a one-line edit of app/greet.sh:"
sh -c "$edit" && $redo push image.tar "$address/bench/hello:1" 2>/dev/null | grep -v '^manifest'

for ca in set unset; do
  if [ "$ca" = unset ]; then envcmd="env -u NODE_EXTRA_CA_CERTS"; else envcmd="env"; fi
  echo
  echo "== NODE_EXTRA_CA_CERTS $ca =="
  hyperfine --runs "$runs" --warmup 1 --style basic \
    -n 'edit + rebuild + redo-ts push' "sh -c '$edit' && $envcmd $redo push image.tar $address/bench/hello:1" \
    -n 'edit + rebuild only (redo-ts image.oci.tar)' "sh -c '$edit' && $envcmd $redo image.oci.tar" \
    -n 'redo-ts push, nothing changed' "$envcmd $redo push image.tar $address/bench/hello:1" \
    -n 'skopeo copy oci-archive (same image, blobs present)' "skopeo copy -q --dest-tls-verify=false oci-archive:image.oci.tar:latest docker://$address/bench/hello:skopeo"
done

# A fresh clone with an empty source cache: through the remote cache vs from scratch.
echo
echo "== fresh clone: image.tar through the remote cache vs from scratch =="
copy "$work/seed"
(cd "$work/seed" && REDO_TS_CACHE="$work/seed-cache" $redo --remote-cache "$address/bench/cache" image.tar >/dev/null 2>&1)
hyperfine --runs "$runs" --style basic \
  --prepare "rm -rf $work/c $work/c-cache; mkdir -p $work/c; cd $repo && git ls-files -z | xargs -0 cp -P --parents -t $work/c; ln -s $repo/node_modules $work/c/node_modules; ln -s $repo/dist $work/c/dist" \
  -n 'fresh clone, --remote-cache' "cd $work/c && REDO_TS_CACHE=$work/c-cache $redo --remote-cache $address/bench/cache image.tar" \
  -n 'fresh clone, from scratch (apt, fragments)' "cd $work/c && REDO_TS_CACHE=$work/c-cache $redo image.tar"
cmp "$work/seed/image.tar" "$work/c/image.tar" && echo "image.tar byte-identical to the seeding clone's"
