#!/usr/bin/env bash
# Container image (Containerfile): `make image` builds it with podman, then
# this checks its config (non-root user, port 8080, /data volume, a
# HEALTHCHECK running `tandem healthcheck`, the entrypoint) and, as
# containers cannot run in this sandbox, extracts its binary (podman create
# + podman cp: nothing runs) and runs that: static, `version --json`, and
# `serve` with the image's environment and a JWT secret (bound here on
# loopback) answering `healthcheck`, which fails once it is stopped.
# Budget: ~60 s warm (podman install ~30 s on a machine without it).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v podman >/dev/null; then
  echo "installing Debian podman (not on this machine yet)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman >/dev/null
fi

tag="ci-$$"
make image IMAGE=tandem VERSION="$tag"
img="tandem:$tag"
work=$(mktemp -d)
cid=""
spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  [ -n "$cid" ] && podman rm -f "$cid" >/dev/null 2>&1 || true
  podman rmi -f "$img" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
cfg() { podman image inspect "$img" --format "$1"; }
[ "$(cfg '{{.Config.User}}')" = "65532:65532" ] || fail "image user is $(cfg '{{.Config.User}}'), want 65532:65532"
cfg '{{json .Config.ExposedPorts}}' | grep -q '"8080/tcp"' || fail "8080/tcp not exposed"
cfg '{{json .Config.Volumes}}' | grep -q '"/data"' || fail "/data is not a volume"
cfg '{{json .Config.Healthcheck}}' | grep -q '"/tandem","healthcheck"' || fail "no HEALTHCHECK running tandem healthcheck"
[ "$(cfg '{{json .Config.Entrypoint}}')" = '["/tandem"]' ] || fail "entrypoint is $(cfg '{{json .Config.Entrypoint}}')"
size=$(cfg '{{.Size}}')
echo "image $img: $(( size / 1024 / 1024 )) MiB ($size bytes), user 65532, 8080/tcp, volume /data, healthcheck, entrypoint /tandem"

# A created container is never started: its exported filesystem holds the
# binary, the user and the ownership of /data.
cid=$(podman create "$img")
podman export -o "$work/fs.tar" "$cid"
tar -tvf "$work/fs.tar" --numeric-owner > "$work/list"
grep -Eq '^d[^ ]+ 65532/65532 .* data/?$' "$work/list" || { cat "$work/list"; fail "/data is not owned by 65532"; }
mkdir "$work/fs"
tar -xf "$work/fs.tar" -C "$work/fs" tandem etc/passwd etc/ssl/certs/ca-certificates.crt
grep -q '^tandem:x:65532:65532:' "$work/fs/etc/passwd" || fail "no tandem user in /etc/passwd"
[ -s "$work/fs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle"
bin="$work/fs/tandem"
if readelf -l "$bin" | grep -q 'INTERP'; then fail "the image's binary is dynamically linked"; fi
"$bin" version --json | tee "$work/version.json"
grep -q "\"version\": \"$tag\"" "$work/version.json" || fail "version --json does not report $tag"

# With auth configured it starts (protected mode refuses 0.0.0.0 without;
# TestProtectedMode covers that); bound to loopback here, as tests never
# bind anything else, on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
TANDEM_ADDR="127.0.0.1:$port" TANDEM_DATA_DIR="$work/data" TANDEM_LOG_FORMAT=json \
  TANDEM_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$bin" serve >"$work/serve.log" 2>&1 &
spid=$!
ok=""
for _ in $(seq 1 100); do
  if "$bin" healthcheck --url "http://127.0.0.1:$port" --timeout 1s >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { cat "$work/serve.log"; fail "healthcheck never passed"; }
"$bin" healthcheck --url "http://127.0.0.1:$port"
kill -TERM "$spid"; wait "$spid" || fail "serve did not exit 0 on SIGTERM"
spid=""
if "$bin" healthcheck --url "http://127.0.0.1:$port" --timeout 1s 2>"$work/hc.err"; then fail "healthcheck passed against a stopped server"; fi
grep -q 'cannot reach the server' "$work/hc.err" || { cat "$work/hc.err"; fail "healthcheck's failure does not say why"; }
echo "image checks passed"
