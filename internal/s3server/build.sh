#!/usr/bin/env bash
# Builds the S3 server the tests run (internal/s3server: versitygw at the
# version pinned in s3server.go) once, into the user's cache folder, and
# prints the binary's path. When the binary is there already it only prints
# the path. Out of tree: `go install pkg@version` uses versitygw's own
# go.mod, so nothing of it enters Riff's.
#
#   internal/s3server/build.sh            build if missing, print the path
#   RIFF_S3_SERVER_DIR=/some/dir build.sh  cache somewhere else
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$(sed -n 's/^[[:space:]]*Package = "\(.*\)"$/\1/p' "$here/s3server.go")"
version="$(sed -n 's/^[[:space:]]*Version = "\(.*\)"$/\1/p' "$here/s3server.go")"
if [ -z "$pkg" ] || [ -z "$version" ]; then
  echo "build.sh: cannot read Package and Version from $here/s3server.go" >&2
  exit 1
fi

# The same folder as s3server.DefaultBinary (os.UserCacheDir).
if [ -n "${RIFF_S3_SERVER_DIR:-}" ]; then
  dir="$RIFF_S3_SERVER_DIR"
else
  case "$(uname -s)" in
    Darwin) cache="$HOME/Library/Caches" ;;
    *) cache="${XDG_CACHE_HOME:-$HOME/.cache}" ;;
  esac
  dir="$cache/riff/versitygw-$version"
fi
bin="$dir/versitygw"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
tmp="$(mktemp -d "$dir/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "building versitygw $version for the S3 tests (once; cached in $dir)" >&2
start=$(date +%s)
# Outside any module, with no workspace, so Riff's go.mod plays no part.
(cd "$tmp" && GOWORK=off GOFLAGS= GOBIN="$tmp" CGO_ENABLED=0 \
  "${GO:-go}" install -trimpath -ldflags='-s -w' "$pkg@$version") >&2
mv "$tmp/versitygw" "$bin"
echo "built $bin in $(( $(date +%s) - start )) s" >&2
echo "$bin"
