#!/usr/bin/env bash
# Installs the pinned js-libp2p packages for the interop tests (`npm ci` from package-lock.json).
# Idempotent and cheap when nothing changed: skipped while node_modules was made from this very
# lockfile (its sha256 is stamped inside node_modules after a successful install).
set -euo pipefail
cd "$(dirname "$0")"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.noloco-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "interop: node_modules up to date"
  exit 0
fi
echo "interop: npm ci (node $(node --version))"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
