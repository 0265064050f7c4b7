#!/usr/bin/env bash
# Builds the corsgate container image from Containerfile with buildah and
# proves it works: the binary runs inside it as the image's user (version,
# serve --help), and the image's config says user 65532:65532, the entrypoint,
# the default command and the exposed ports. buildah is installed from apt
# when it is missing.
#
# The binary is built on this machine (CGO_ENABLED=0, so the image needs no C
# library) and staged with the CA certificates in a temporary build context:
# scratch is the only base image, so nothing is pulled.
#
#   IMAGE=corsgate:v1.2.3 VERSION=v1.2.3 KEEP_IMAGE=1 bash scripts/container.sh
#
# IMAGE is the tag (default corsgate:test); VERSION is written into the binary
# and the labels (default: git describe). The image and its test container
# are removed at exit unless KEEP_IMAGE=1; a kept image can be pushed with
# buildah --storage-driver vfs push.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-corsgate:test}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
keep=${KEEP_IMAGE:-0}

if ! command -v buildah >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
  fi
fi
# vfs needs no kernel overlay support or fuse; chroot isolation needs no
# user namespaces, which containers running this script often lack.
bh() { buildah --storage-driver vfs "$@"; }

ctx=$(mktemp -d)
iid=""
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then bh rm "$ctr" >/dev/null || true; fi
  if [ -n "$iid" ] && [ "$keep" != 1 ]; then bh rmi -f "$iid" >/dev/null || true; fi
  rm -rf "$ctx"
}
trap cleanup EXIT

echo "binary $version"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/corsgate/corsgate/internal/version.Version=$version" \
  -o "$ctx/corsgate" ./cmd/corsgate
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
cp Containerfile "$ctx/Containerfile"

echo "image $image"
# Everything below names the image by its ID, so a parallel run that moves
# the tag cannot make this one check or remove the wrong image.
bh bud --quiet --isolation chroot --layers=false \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --iidfile "$ctx/iid" -f "$ctx/Containerfile" -t "$image" "$ctx" >/dev/null
iid=$(cat "$ctx/iid")
iid=${iid#sha256:}

fail() { echo "container image: $*" >&2; exit 1; }
inspect() { bh inspect --type image --format "$1" "$iid"; }

user=$(inspect '{{.OCIv1.Config.User}}')
[ "$user" = 65532:65532 ] || fail "user $user, want 65532:65532"
entrypoint=$(inspect '{{.OCIv1.Config.Entrypoint}}')
[ "$entrypoint" = '[/usr/local/bin/corsgate]' ] || fail "entrypoint $entrypoint"
cmd=$(inspect '{{.OCIv1.Config.Cmd}}')
[ "$cmd" = '[serve --config /etc/corsgate/corsgate.yaml]' ] || fail "cmd $cmd"
ports=$(inspect '{{range $p, $_ := .OCIv1.Config.ExposedPorts}}{{$p}} {{end}}')
[ "$ports" = '8080/tcp 9100/tcp ' ] || fail "exposed ports $ports"
label=$(inspect '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}')
[ "$label" = "$version" ] || fail "version label $label, want $version"

ctr=$(bh from --quiet "$iid")
# buildah run runs as the image's USER: this proves 65532 can execute it.
got=$(bh run --isolation chroot "$ctr" -- /usr/local/bin/corsgate version)
case "$got" in *"$version"*) ;; *) fail "corsgate version printed $got, want $version" ;; esac
help=$(bh run --isolation chroot "$ctr" -- /usr/local/bin/corsgate serve --help)
case "$help" in *--shutdown-grace*) ;; *) fail "corsgate serve --help printed no --shutdown-grace: $help" ;; esac
echo "image $image ($iid): user $user, entrypoint $entrypoint, cmd $cmd, ports $ports; corsgate version: $got"
if [ "$keep" = 1 ]; then echo "kept $image"; fi
