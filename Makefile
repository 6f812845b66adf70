# Tandem — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./tandem-data
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)

.PHONY: run build image release-gomod test generate check-generate vet fmt lint-spec bench ci test-browser test-ts test-ts-pack soak fuzz

## run: start the server on embedded SQLite at $(ADDR) (data in $(DATA));
## Ctrl-C shuts it down gracefully and exits 0 (built first: `go run` exits 1 on SIGINT)
run: build
	exec bin/tandem serve --addr $(ADDR) --data-dir $(DATA)

## build: build bin/tandem
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/tandem ./cmd/tandem

## image: build the container image tandem:$(VERSION) (and tandem:latest) with podman from
## a static binary (CGO_ENABLED=0) on an empty base: non-root, /data volume, HEALTHCHECK
IMAGE ?= tandem
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o bin/tandem-linux-amd64 ./cmd/tandem
	rm -rf build/image && mkdir -p build/image/rootfs/etc/ssl/certs build/image/rootfs/tmp build/image/data
	printf 'root:x:0:0:root:/:/sbin/nologin\ntandem:x:65532:65532:tandem:/data:/sbin/nologin\n' > build/image/rootfs/etc/passwd
	printf 'root:x:0:\ntandem:x:65532:\n' > build/image/rootfs/etc/group
	cp /etc/ssl/certs/ca-certificates.crt build/image/rootfs/etc/ssl/certs/
	chmod 1777 build/image/rootfs/tmp
	podman build --format docker --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f Containerfile .

## release-gomod: prepare go.mod for a release tagged $(RELEASE) (docs/release.md):
## require the Go SDK at $(RELEASE) instead of the ./sdk/go replace, so that
## `go install github.com/tandemhq/tandem/cmd/tandem@$(RELEASE)` works
release-gomod:
	@test -n "$(RELEASE)" || { echo "usage: make release-gomod RELEASE=vX.Y.Z (after tagging sdk/go/vX.Y.Z)"; exit 2; }
	$(GO) mod edit -dropreplace=github.com/tandemhq/tandem/sdk/go -require=github.com/tandemhq/tandem/sdk/go@$(RELEASE)
	GOFLAGS=-mod=mod $(GO) mod tidy

## test: the whole suite with the race detector (this module, then the Go SDK's
## module in sdk/go); ends with which tests ran against PostgreSQL/Redis and
## which skipped them, and why
test:
	GO=$(GO) $(GO) run ./internal/testsummary --also-in=sdk/go -race -count=1 ./...

## test-browser: headless-Chromium test of the console at / (Debian chromium + playwright-core, tests/browser)
test-browser:
	cd tests/browser && npm ci --no-audit --no-fund && npm test

## generate: regenerate gen/api and sdk/go/client from spec/openapi.yaml (generators pinned in go.mod, run with go run)
generate:
	cd gen && $(GO) generate ./...

## check-generate: fail when gen/ or the SDK's generated client is stale
check-generate: generate
	git diff --exit-code -- gen/ sdk/go/client/

vet:
	$(GO) vet ./...
	cd sdk/go && $(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

## lint-spec: lint both specs (needs npm; installs pinned linters under .tools/)
lint-spec:
	bash .ci/lint-spec.sh

## bench: Go benchmarks for the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## soak: 10-minute mixed load against a tandem subprocess; fails on lost events, RSS growth or leaks (SOAK_DURATION to change)
soak:
	SOAK_DURATION=$${SOAK_DURATION:-10m} $(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./cmd/tandem/

## fuzz: every fuzz target for FUZZTIME each (default 9s), as CI does
fuzz:
	bash .ci/steps/50-fuzz.sh

## test-ts: the TypeScript SDK (sdk/ts): pinned npm deps, generated types fresh, tsc strict, node tests against a live tandem
test-ts:
	cd sdk/ts && npm ci --no-audit --no-fund && npm run check-gen && npm run typecheck && npm run build && npm test

## test-ts-pack: the SDK as published: publint, attw, npm pack, install the tarball and run ESM and CJS scripts on Node 18 (ws), 20 and 22 (global WebSocket) against a live tandem, browser bundle check
test-ts-pack:
	cd sdk/ts && npm ci --no-audit --no-fund && npm run build && npm run check-package && node scripts/pack-check.mjs

ci:
	bash .ci/run
