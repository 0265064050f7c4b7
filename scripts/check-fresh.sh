#!/usr/bin/env bash
# Fails when a generator changed a committed file: run after regenerating.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "$(git status --porcelain -- gen example/config example/envoy example/web/dist example/web/src/gen)" ]; then
  echo "generated files are stale; regenerate and commit:"
  git status --porcelain -- gen example/config example/envoy example/web/dist example/web/src/gen
  git --no-pager diff --stat -- gen example/config example/envoy example/web/dist example/web/src/gen
  exit 1
fi
echo "generated files are fresh"
