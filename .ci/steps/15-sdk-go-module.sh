#!/usr/bin/env bash
# The Go SDK (sdk/go) as a module on its own, the way an application gets
# it: a copy outside this repository (no replace, no workspace) must build,
# vet and pass its server-free tests with the oldest Go it declares
# (go 1.24.0, fetched as a toolchain module), and an application that
# imports it must not pull any of the server's dependencies into its build
# list. Prints the application's module counts. Budget: ~40 s (the go1.24.0
# toolchain download ~10 s on a new machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

minimum=$(sed -n 's/^go //p' sdk/go/go.mod)
echo "sdk/go declares go $minimum"

# 1. The module alone, with its minimum Go.
cp -r sdk/go "$tmp/sdk"
(
  cd "$tmp/sdk"
  export GOTOOLCHAIN="go$minimum" GOFLAGS=-mod=mod CI=
  go version
  go build ./...
  go vet ./...
  # Outside the repository the examples skip (they need the server); the
  # tests that need no server run.
  go test -count=1 ./...
  cmp -s go.mod "$repo/sdk/go/go.mod" || { echo "FAIL: sdk/go/go.mod is not tidy:"; diff "$repo/sdk/go/go.mod" go.mod || true; exit 1; }
)

# 2. An application that imports the SDK.
mkdir -p "$tmp/app"
cd "$tmp/app"
cat > go.mod <<EOM
module example.com/app

go $minimum

require github.com/tandemhq/tandem/sdk/go v0.0.0-00010101000000-000000000000

replace github.com/tandemhq/tandem/sdk/go => $tmp/sdk
EOM
cat > main.go <<'EOM'
package main

import (
	"context"
	"fmt"

	tandem "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/sdk/go/client"
)

func main() {
	c, err := tandem.New("http://127.0.0.1:8080")
	if err != nil {
		panic(err)
	}
	var r *client.Resource
	fmt.Println(c.REST != nil, r == nil, context.Background() != nil)
}
EOM
GOTOOLCHAIN="go$minimum" go mod tidy
GOTOOLCHAIN="go$minimum" go build -o /dev/null .
all=$(go list -m all | tail -n +2)
built=$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u | grep -v '^example.com/app$')
echo "application's build list (go list -m all): $(echo "$all" | wc -l) modules besides itself"
echo "modules whose code is compiled into it: $(echo "$built" | wc -l): $(echo $built)"
server_only='github.com/tandemhq/tandem |modernc.org/sqlite|github.com/jackc/pgx|github.com/getkin/kin-openapi|github.com/redis/go-redis|go.opentelemetry.io|github.com/prometheus|github.com/golang-jwt'
if echo "$all" | grep -E "^($server_only)"; then
  echo "FAIL: the SDK pulls server dependencies (above) into an application's build list"
  exit 1
fi
echo "sdk/go builds on its own with go $minimum and pulls none of the server's dependencies"
