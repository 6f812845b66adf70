#!/usr/bin/env bash
# TypeScript SDK (sdk/ts): npm ci (pinned by package-lock.json), generated
# REST and frame types fresh against spec/ (openapi-typescript,
# json-schema-to-typescript), tsc --noEmit strict, build to dist/, then
# node --test against live `tandem serve` processes (built with go build),
# including a gap-free mirror across a SIGKILL restart and in-band auth.
# Budget: ~45 s (npm ci ~10 s, go build ~15 s, tests ~10 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
make test-ts
