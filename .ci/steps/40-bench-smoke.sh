#!/usr/bin/env bash
# Smoke run of `tandem bench` so the load generator cannot rot: every
# scenario with a tiny N for a second or two, each against a server the
# bench spawns itself (the real binary, a temp data dir), two of them with
# worker processes (`tandem bench worker`). Figures are printed, never
# checked: speed targets live in docs/benchmarks.md, not in CI. The step
# fails on any error or missing delivery (--fail-on-errors; for webhooks
# also any request that does not verify).
# Budget: about 20 s on the 2-core CI machine (build included), < 60 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/tandem" ./cmd/tandem
t0=$(date +%s)
run() {
  echo "+ tandem bench $*"
  timeout 60 "$dir/tandem" bench "$@" --quiet --fail-on-errors
}
run fanout --subscribers 200 --rate 10 --duration 2s --procs 2
run fanout --subscribers 20 --rate 10 --duration 1s --publish ws
run connections --connections 400 --procs 2 --settle 300ms
run rest --clients 8 --duration 1s --warmup 200ms
run writes-to-events --rate 100 --duration 1s
run webhooks --rate 50 --duration 1s
run webhooks --rate 0 --events 500 --max-batch 100
echo "bench smoke passed in $(( $(date +%s) - t0 ))s"
