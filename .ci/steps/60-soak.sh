#!/usr/bin/env bash
# 60-second soak (`make soak` runs the same test for 10 minutes): reconnecting
# WebSocket clients with cursors, resource writers, a channel publisher, SSE
# and long-poll followers against a `tandem serve` subprocess; fails on lost,
# duplicated or reordered events, RSS growth past the bound after warm-up,
# goroutine creep, or gauges not back at baseline (cmd/tandem/soak_test.go).
# Budget: about 90 s (60 s load, build, catch-up and checks).
set -euo pipefail
cd "$(dirname "$0")/../.."
SOAK_DURATION="${SOAK_DURATION:-60s}" go test -count=1 -timeout 10m -run '^TestSoak$' -v ./cmd/tandem/
