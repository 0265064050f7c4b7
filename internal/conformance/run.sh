#!/usr/bin/env bash
# Runs the connectrpc conformance suite (server mode) against corsgate's
# gateway in front of the suite's reference server. Installs the suite's
# commands with go install when they are missing, builds the wrapper
# (./gatewayserver), and runs:
#
#   connectconformance --mode server --conf config.yaml [--known-failing @known-failing.txt]
#     [--known-flaky @known-flaky.txt] -- gatewayserver --protos DIR --referenceserver PATH
#
# Extra arguments go to connectconformance, for example
#   run.sh -v --run '**/Timeouts/**'
# CONFORMANCE_PARALLEL (default 2) sets the parallelism of RPCs and servers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=v1.0.7
parallel=${CONFORMANCE_PARALLEL:-2}

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The tools, at the pinned version. Installed from an empty folder, so that
# corsgate's go.mod is left alone.
for tool in connectconformance referenceserver; do
  if ! "$gobin/$tool" --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing $tool@$version into $gobin" >&2
    (cd "$tmp" && GOBIN="$gobin" go install "connectrpc.com/conformance/cmd/$tool@$version")
  fi
done

# The suite's .proto files: the module's source, from the module cache.
dir=$(cd "$tmp" && go mod download -json "connectrpc.com/conformance@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
protos="$dir/proto"
if [ ! -f "$protos/connectrpc/conformance/v1/service.proto" ]; then
  echo "conformance protos not found in $protos" >&2
  exit 1
fi

(cd "$root" && go build -o "$tmp/gatewayserver" ./internal/conformance/gatewayserver)

args=(--mode server --conf "$here/config.yaml" --parallel "$parallel" --max-servers "$parallel")
for list in known-failing known-flaky; do
  if [ -s "$here/$list.txt" ]; then
    args+=("--$list" "@$here/$list.txt")
  fi
done
cd "$tmp"
"$gobin/connectconformance" "${args[@]}" "$@" -- \
  "$tmp/gatewayserver" --protos "$protos" --referenceserver "$gobin/referenceserver"
