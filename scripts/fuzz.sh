#!/usr/bin/env bash
# Runs every fuzz target of the repository briefly: one
#   go test -run=^$ -fuzz=^Name$ -fuzztime=TIME ./pkg
# per target, found by grep so that new targets are included without editing
# this file. Usage: bash scripts/fuzz.sh [TIME] (default 5s). Exits non-zero
# when a target fails (a crash is written to the package's testdata/fuzz/,
# to be committed as a regression seed once fixed) or when no target is found.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzztime=${1:-5s}

# "dir name" lines for every "func FuzzXxx(" in a _test.go file, outside
# node_modules, testdata and generated code.
targets=$(grep -rE --include='*_test.go' --exclude-dir=node_modules --exclude-dir=testdata \
  --exclude-dir=.git --exclude-dir=gen -o '^func Fuzz[A-Za-z0-9_]*\(' . |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' | sort -u)
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

failed=()
count=0
while read -r dir name; do
  count=$((count + 1))
  # Run from the module that holds the package (nested modules included).
  abs=$root/${dir#./}
  abs=${abs%/.}
  mod=$abs
  while [ ! -f "$mod/go.mod" ] && [ "$mod" != "$root" ]; do
    mod=$(dirname "$mod")
  done
  pkg=.${abs#"$mod"}
  printf '== %s %s (%s)\n' "$dir" "$name" "$fuzztime"
  start=$(date +%s)
  corpus=$abs/testdata/fuzz/$name
  before=$(ls "$corpus" 2>/dev/null | sort || true)
  log=$(mktemp)
  if (cd "$mod" && go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" </dev/null) >"$log" 2>&1; then
    tail -n 3 "$log"
    printf '   %s passed in %ss\n' "$name" "$(($(date +%s) - start))"
  elif grep -q '^    context deadline exceeded$' "$log" &&
    [ "$(ls "$corpus" 2>/dev/null | sort || true)" = "$before" ]; then
    # Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
    # failure (golang/go#75804, fixed in Go 1.27): no input failed and none
    # was written. Run the target again with a count budget, which has no
    # deadline to race; a real failure fails that run too.
    tail -n 3 "$log"
    echo "   $name: the fuzz deadline race of Go 1.26 (golang/go#75804), no failing input; again with a count budget"
    if (cd "$mod" && go test -run='^$' -fuzz="^${name}\$" -fuzztime=20000x "$pkg" </dev/null); then
      printf '   %s passed in %ss\n' "$name" "$(($(date +%s) - start))"
    else
      printf '   %s FAILED after %ss\n' "$name" "$(($(date +%s) - start))"
      failed+=("$dir $name")
    fi
  else
    cat "$log"
    printf '   %s FAILED after %ss\n' "$name" "$(($(date +%s) - start))"
    failed+=("$dir $name")
  fi
  rm -f "$log"
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nfuzz.sh: %d of %d targets failed:\n' "${#failed[@]}" "$count" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\nfuzz.sh: %d targets passed\n' "$count"
