#!/usr/bin/env bash
# Runs every corsgate test on a fresh machine: it installs what the tests need
# when it is missing (buf from npm, the web toolchain from npm, Chromium from
# apt; every Go tool is pinned with a tool line in a go.mod and run with
# go tool), checks that generated files are
# fresh, then runs vet, the Go tests, short fuzzing, the conformance suite and a
# smoke run of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

step "tools"
if [ ! -x node_modules/.bin/buf ]; then
  npm ci --no-audit --no-fund
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
buf=$root/node_modules/.bin/buf
"$buf" --version

step "generated code is fresh"
"$buf" lint
"$buf" generate
"$buf" generate --template buf.gen.config.yaml
bash example/web/build.sh
bash scripts/check-fresh.sh

step "format and vet"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/') || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
# Every module of go.work: the root and the nested test, benchmark and tool
# modules (./... from the root stops at a nested go.mod).
mapfile -t modules < <(go list -m -f '{{.Dir}}/...')
go vet "${modules[@]}"
go tool staticcheck "${modules[@]}"

step "go test"
# Includes the 20 s chaos soak (internal/bench/soak); the long one: go run ./internal/bench/soak -duration 10m
go test -count=1 "${modules[@]}"
go test -count=1 -race ./interceptor/... ./internal/wire/... ./gateway/...

step "fuzz (short)"
bash scripts/fuzz.sh "${FUZZTIME:-5s}"

step "conformance suite"
bash internal/conformance/run.sh

step "benchmarks run (smoke, not timed)"
go test -run='^$' -bench=. -benchtime=1x ./interceptor/... ./gateway/... ./internal/bench/...

step "container image"
bash scripts/container.sh

step "all tests passed"
