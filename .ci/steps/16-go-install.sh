#!/usr/bin/env bash
# A release the way users install it, without publishing: the committed
# tree (`git archive HEAD`) is prepared as docs/release.md says (the Go SDK
# module published at the release version, then `make release-gomod`),
# both modules are written into a file:// GOPROXY by internal/modproxy, and
# `go install github.com/tandemhq/tandem/cmd/tandem@$ver` must build a
# binary whose `tandem version --json` reports $ver. Also checks that the
# development go.mod (with its ./sdk/go replace) is refused by go install,
# which is why the release step exists. Budget: ~90 s (a private module
# cache is filled from the machine's, then one full build).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
ver=v0.0.0-ci.1
proxy="$tmp/proxy"
modproxy="$tmp/modproxy"
go build -o "$modproxy" ./internal/modproxy

# Our modules come from the file proxy; every other module from the module
# cache already on this machine (as a proxy), else the network. A private
# module cache keeps the fake versions out of the developer's.
upstream="$(go env GOMODCACHE)/cache/download"
export GONOSUMDB=github.com/tandemhq/tandem
export GOPROXY="file://$proxy,file://$upstream,$(go env GOPROXY)"
export GOMODCACHE="$tmp/modcache" GOFLAGS="${GOFLAGS:-} -modcacherw"

mkdir -p "$tmp/rel"
git archive HEAD | tar -x -C "$tmp/rel"

# The development go.mod cannot be installed with @version.
"$modproxy" -dir "$proxy" -version v0.0.0-ci.0 "$tmp/rel/sdk/go" "$tmp/rel"
if GOBIN="$tmp/bin0" go install github.com/tandemhq/tandem/cmd/tandem@v0.0.0-ci.0 2> "$tmp/err0"; then
  echo "FAIL: go install accepted a go.mod with a replace directive"; exit 1
fi
grep -q "replace" "$tmp/err0" || { echo "FAIL: unexpected go install error:"; cat "$tmp/err0"; exit 1; }
echo "development go.mod refused by go install, as expected: $(grep -m1 replace "$tmp/err0")"

# The release: the SDK first, then the server requiring it.
"$modproxy" -dir "$proxy" -version "$ver" "$tmp/rel/sdk/go"
(cd "$tmp/rel" && make -s release-gomod RELEASE="$ver")
grep -q "github.com/tandemhq/tandem/sdk/go $ver" "$tmp/rel/go.mod" || { echo "FAIL: release-gomod did not require the SDK at $ver"; exit 1; }
if grep -q '^replace' "$tmp/rel/go.mod"; then echo "FAIL: release go.mod still has a replace"; exit 1; fi
"$modproxy" -dir "$proxy" -version "$ver" "$tmp/rel"
GOBIN="$tmp/bin" go install "github.com/tandemhq/tandem/cmd/tandem@$ver"
out=$("$tmp/bin/tandem" version --json)
echo "$out"
echo "$out" | grep -q "\"version\": *\"$ver\"" || { echo "FAIL: go install …@$ver built a binary that does not report $ver"; exit 1; }
echo "go install github.com/tandemhq/tandem/cmd/tandem@$ver reports $ver"
