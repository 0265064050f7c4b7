#!/usr/bin/env bash
# Runs the connectrpc conformance suite (server mode) against corsgate's
# gateway in front of the suite's reference server. The suite's commands are
# pinned with tool lines in internal/tools/go.mod (go tool builds them), the
# wrapper (./gatewayserver) is built, and it runs:
#
#   connectconformance --mode server --conf config.yaml [--known-failing @known-failing.txt]
#     [--known-flaky @known-flaky.txt] -- gatewayserver --protos DIR --referenceserver PATH
#
# Extra arguments go to connectconformance, for example
#   run.sh -v --run '**/Timeouts/**'
# CONFORMANCE_PARALLEL (default 2) sets the parallelism of RPCs and servers.
#
# Reruns: about one run in seven, one HTTP/1.1 case fails with UNAVAILABLE
# "unexpected EOF" or a reset connection, a different case each time, with
# and without corsgate's own backend transport. It is a keep-alive race:
# after an early answer to an HTTP/1.1 client stream whose body it cannot
# drain, net/http closes the connection without having said
# "Connection: close" (full-duplex responses skip that check), and the
# suite's client sends its next request on it. So when at most five cases
# fail, each is run again twice on its own, and the run passes only if they
# all pass both times; the cases are printed as flaky. More failures, or a
# case that fails again, fail the run. CONFORMANCE_RERUN=0 turns reruns off.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=v1.0.7
parallel=${CONFORMANCE_PARALLEL:-2}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The suite's commands, built by go tool at the version go.sum pins; -n
# prints the built binary's path instead of running it.
cd "$root"
connectconformance=$(go tool -n connectconformance)
referenceserver=$(go tool -n referenceserver)
for tool in "$connectconformance" "$referenceserver"; do
  if ! "$tool" --version 2>/dev/null | grep -q " $version\$"; then
    echo "conformance: $tool is not $version; align internal/tools/go.mod and run.sh" >&2
    exit 1
  fi
done

# The suite's .proto files: the pinned module's source, from the module cache.
dir=$(go list -m -f '{{.Dir}}' connectrpc.com/conformance)
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
server=(-- "$tmp/gatewayserver" --protos "$protos" --referenceserver "$referenceserver")
log="$tmp/conformance.log"
status=0
"$connectconformance" "${args[@]}" "$@" "${server[@]}" 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 0 ] || [ "${CONFORMANCE_RERUN:-1}" != 1 ]; then
  exit "$status"
fi
mapfile -t failed < <(sed -n 's/^FAILED: \(.*\):$/\1/p' "$log" | sort -u)
if [ "${#failed[@]}" -eq 0 ] || [ "${#failed[@]}" -gt 5 ]; then
  exit "$status"
fi
rerun=()
for name in "${failed[@]}"; do
  rerun+=(--run "$name")
done
for attempt in 1 2; do
  echo "conformance: rerun $attempt of ${#failed[@]} failed case(s)" >&2
  "$connectconformance" "${args[@]}" "${rerun[@]}" "${server[@]}"
done
printf 'conformance: FLAKY (failed once, then passed twice on its own): %s\n' "${failed[@]}" >&2
