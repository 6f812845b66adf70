#!/usr/bin/env bash
# Headless-Chromium test of the console served at / (tests/browser): Debian
# chromium driven by playwright-core (pinned in tests/browser/package-lock.json).
# It builds tandem, starts it on 127.0.0.1 with temp data dirs, and checks the
# live events, resume across a restart, two-tab chat with presence, the token
# flow, the AsyncAPI page, and that the Go and TS SDK snippets compile
# (go vet; tsc strict with sdk/ts's toolchain, npm ci there if missing). Screenshots:
# tests/browser/artifacts/*.png.
# Budget: 20-45 s depending on load (plus ~1 min to install chromium on a machine without it).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing Debian chromium (not on this machine yet)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

cd tests/browser
npm ci --no-audit --no-fund
timeout 600 npm test
