#!/usr/bin/env bash
# Lints spec/openapi.yaml (Redocly) and spec/asyncapi.yaml (AsyncAPI parser)
# with linters pinned in .ci/lint/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/lint"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install redocly lint --config redocly.yaml ../../spec/openapi.yaml
node asyncapi-lint.mjs ../../spec/asyncapi.yaml
