#!/usr/bin/env bash
# FALLBACK of .ci/image.sh, which builds deploy/Dockerfile for real with buildah and starts the
# image. .ci/run runs this script only where buildah cannot be had (not root, no Debian packages);
# a developer without root can run it too. It replays the Dockerfile's stages without an image:
# copy the build context with the .dockerignore rules, full install + default bundle build in a
# "build" dir (npm run build: dist/), production-only install in a fresh "runtime" dir, then start the sidecar from the
# runtime dir as uid 10001 with only the data, socket and tmp dirs writable, probe it with
# deploy/healthcheck.mjs (gRPC health), call one RPC over the socket, stop it with SIGTERM.
#
# What it cannot catch (the real build does): a COPY of a path missing from the context or a
# wrong COPY destination, a file the runtime stage lacks, the image's USER, ENV, ENTRYPOINT and
# HEALTHCHECK as written, a read-only root. The one thing it checks that .ci/image.sh does not:
# that the build context leaves out node_modules, test, .git and bench (.dockerignore; also
# covered by test/ship/docker.test.ts). Exits non-zero on any failure.
#
# usage: bash .ci/docker-steps.sh     (KEEP_TMP=1 keeps the work dir for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

work=$(mktemp -d /tmp/arbiter-docker-steps.XXXXXX)
chmod 755 "$work"
server_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$work/server.log" ]]; then
    echo "---- server log (last 40 lines) ----" >&2
    tail -n 40 "$work/server.log" >&2 || true
  fi
  if [[ "${KEEP_TMP:-}" == "1" ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT

step() { printf '\n--> %s\n' "$*"; }
fail() { echo "docker-steps: $*" >&2; exit 1; }

step "build context (.dockerignore rules)"
n=$(node deploy/context.mjs "$repo" "$work/context")
echo "$n files in the context"
for must in package.json package-lock.json bin/arbiter.js src/cli.ts deploy/healthcheck.mjs policies; do
  [[ -e "$work/context/$must" ]] || fail "build context lacks $must"
done
for mustnot in node_modules test .git bench; do
  [[ ! -e "$work/context/$mustnot" ]] || fail "build context contains $mustnot (check .dockerignore)"
done

step "stage build: npm ci, npm run build (dist/), arbiter build -o /bundle/bundle.tar.gz policies"
mkdir -p "$work/build" "$work/bundle"
cp "$work/context/package.json" "$work/context/package-lock.json" "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
cp -R "$work/context/." "$work/build/"
(cd "$work/build" && npm run build --silent)
[[ -f "$work/build/dist/src/cli.js" ]] || fail "npm run build produced no dist/src/cli.js"
(cd "$work/build" && node bin/arbiter.js build -o "$work/bundle/bundle.tar.gz" policies)
[[ -s "$work/bundle/bundle.tar.gz" ]] || fail "bundle build produced no file"
members=$(tar -tzf "$work/bundle/bundle.tar.gz" 2>/dev/null)
for m in policy.wasm data.json .manifest; do
  grep -qx -e "/\?$m" -e "\./$m" <<<"$members" || fail "bundle lacks $m: $(tr '\n' ' ' <<<"$members")"
done
ls -l "$work/bundle/bundle.tar.gz"

step "stage deps: npm ci --omit=dev in a fresh dir"
app="$work/app"
mkdir -p "$app"
cp "$work/context/package.json" "$work/context/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error)
for dev in vitest typescript hdr-histogram-js @bufbuild/buf; do
  [[ ! -e "$app/node_modules/$dev" ]] || fail "dev dependency $dev in the production install"
done
for prod in ajv graphql pg lru-cache; do
  [[ -e "$app/node_modules/$prod" ]] || fail "production dependency $prod missing from the production install"
done

step "stage runtime: copy the compiled dist/, bin and the prebuilt bundle (root-owned, read-only for uid 10001)"
for p in bin deploy/healthcheck.mjs; do
  mkdir -p "$(dirname "$app/$p")"
  cp -R "$work/context/$p" "$app/$p"
done
cp -R "$work/build/dist" "$app/dist"
# No TypeScript and no loader at run time: the runtime dir holds no sources, and tsx/esbuild are
# dev dependencies.
for absent in src gen tsconfig.json node_modules/tsx node_modules/esbuild; do
  [[ ! -e "$app/$absent" ]] || fail "the runtime dir holds $absent"
done
mkdir -p "$work/opt/bundle"
cp "$work/bundle/bundle.tar.gz" "$work/opt/bundle/bundle.tar.gz"
chmod -R a+rX,go-w "$app" "$work/opt"
# Volumes of the image: only these are writable by the arbiter user.
mkdir -p "$work/data" "$work/run" "$work/tmp"
run_as=()
if [[ $(id -u) -eq 0 ]]; then
  chown 10001:10001 "$work/data" "$work/run" "$work/tmp"
  run_as=(setpriv --reuid 10001 --regid 10001 --clear-groups)
  # Same check a read-only root filesystem would enforce.
  if "${run_as[@]}" test -w "$app/src"; then fail "uid 10001 can write the application dir"; fi
fi

step "start the sidecar from the runtime dir (audit off, prebuilt bundle)"
socket="$work/run/arbiter.sock"
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
admin_port=$(free_port)
health_port=$(free_port)
(
  cd "$app"
  exec env -i PATH="$PATH" HOME=/nonexistent TMPDIR="$work/tmp" NODE_ENV=production \
    ARBITER_GRPC_LISTEN="unix:$socket" \
    ARBITER_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    ARBITER_HEALTH_LISTEN="127.0.0.1:$health_port" \
    ARBITER_BUNDLE="$work/opt/bundle/bundle.tar.gz" \
    ARBITER_DATA_DIR="$work/data" \
    ARBITER_AUDIT=off \
    ARBITER_INSTANCE_ID=docker-steps \
    "${run_as[@]}" node bin/arbiter.js serve
) >"$work/server.log" 2>&1 &
server_pid=$!

step "health probe: node deploy/healthcheck.mjs (grpc.health.v1.Health/Check)"
probe() {
  (cd "$app" && "${run_as[@]}" node deploy/healthcheck.mjs --target "unix:$socket" \
    --service arbiter.v1.PolicyService --timeout-ms 2000)
}
deadline=$((SECONDS + 120))
until probe >/dev/null 2>&1; do
  kill -0 "$server_pid" 2>/dev/null || fail "the sidecar exited before it became healthy"
  (( SECONDS < deadline )) || { probe || true; fail "not SERVING within 120 s"; }
  sleep 1
done
probe
# The image's HEALTHCHECK: no --target, so the probe dials ARBITER_HEALTH_LISTEN.
(cd "$app" && env ARBITER_HEALTH_LISTEN="127.0.0.1:$health_port" "${run_as[@]}" \
  node deploy/healthcheck.mjs --service arbiter.v1.PolicyService) || fail "HEALTHCHECK probe failed"
curl -sS --fail "http://127.0.0.1:$admin_port/readyz" >/dev/null || fail "admin /readyz not ready"

step "one decision over the socket (Connect JSON)"
out=$(curl -sS --fail --unix-socket "$socket" -H 'content-type: application/json' \
  -d '{"tenantId":"acme","subject":{"id":"u1","roles":["viewer"]},"action":"read","resource":{"type":"document","id":"d1"}}' \
  http://localhost/arbiter.v1.PolicyService/Decide) || fail "Decide over the socket failed"
echo "$out"
grep -q '"decisionId"' <<<"$out" || fail "Decide answer has no decisionId: $out"

step "stop with SIGTERM"
kill -TERM "$server_pid"
for _ in $(seq 1 150); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && fail "the sidecar did not exit within 15 s of SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[[ $rc -eq 0 ]] || fail "the sidecar exited with status $rc after SIGTERM"
[[ ! -S "$socket" ]] || fail "socket $socket left behind after shutdown"

echo
echo "docker-steps: OK"
