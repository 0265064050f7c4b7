#!/usr/bin/env bash
# Rebuilds the demo page: installs the pinned npm packages when missing,
# regenerates src/gen from ../../proto with protoc-gen-es, type-checks, and
# bundles into dist/. The root's buf (npm ci at the repo root) runs the
# generator. Run scripts/check-fresh.sh afterwards to see whether the
# committed files were stale.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x ../../node_modules/.bin/buf ]; then
  (cd ../.. && npm ci --no-audit --no-fund)
fi
if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/protoc-gen-es ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
