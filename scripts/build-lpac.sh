#!/usr/bin/env bash
# Builds lpac, the open-source LPA (estkme-group/lpac, AGPL-3.0 / LGPL-2.1), for the lpac tests
# (tests/external/lpac.rs) and the README's "End to end with lpac". lpac is an EXTERNAL test
# program only: it is never linked into, copied into or shipped with smdpp-mock.
#
#   usage: scripts/build-lpac.sh [OUT_DIR]          (default: target/lpac)
#
# The source is the pinned upstream commit below, fetched with git from LPAC_GIT_URL (default:
# the public repository), or, with LPAC_SOURCE_TARBALL=/path/to/lpac.tar.gz, a local source
# tarball holding one top-level folder (for machines without internet). Either way the source
# tree must match LPAC_TREE_SHA256 before anything is built.
#
# Builds the `stdio` APDU driver (LPAC_APDU=stdio: newline-delimited JSON on stdin/stdout, where
# `smdpp-mock euicc` sits) and the curl HTTP backend; PC/SC is left out.
#
# Build dependencies: git (for the fetch), cmake, make, a C compiler, pkg-config, libcjson-dev
# and libcurl4-openssl-dev. As root on Debian/Ubuntu the missing ones are installed with
# apt-get; otherwise the script stops and names them.
#
# Prints the lpac binary's path on its last line (OUT_DIR/lpac/build/src/lpac); everything else
# goes to stderr. An lpac already built there from the same source is reused.
set -euo pipefail

# lpac 2.3.0 as of commit 8f68d5c (`git describe`: v2.3.0-107-g8f68d5c). Not the v2.3.0 tag
# itself: the tests rely on changes made after it, such as the ICCID in the result of
# `profile download` (upstream #420).
LPAC_COMMIT=8f68d5c7e5c89519e831c2532134b590ed4d108f
# SHA-256 over `sha256sum` of every file of the source tree, sorted by path (see tree_sha256).
LPAC_TREE_SHA256=c503e0572433d94d3466f5b4101e6d9969a68026f1a9b8c16824d6abef2bd9c4
LPAC_GIT_URL=${LPAC_GIT_URL:-https://github.com/estkme-group/lpac.git}

out=${1:-target/lpac}
say() { echo "build-lpac: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# A checksum of a source tree that does not depend on how it arrived (git or tarball): the
# SHA-256 of the sorted list of every file's SHA-256 and path. .git is left out.
tree_sha256() {
  (cd "$1" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
    sha256sum | cut -d' ' -f1)
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
src="$out/lpac"
binary="$src/build/src/lpac"
stamp="$src/build/.smdpp-source"

if [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$LPAC_TREE_SHA256" ]; then
  say "reusing $binary"
  echo "$binary"
  exit 0
fi

# Build dependencies.
need=()
[ -n "${LPAC_SOURCE_TARBALL:-}" ] || command -v git >/dev/null || need+=(git)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
# The libraries as pkg-config knows them (any distribution), else Debian's header paths.
has_lib() { { command -v pkg-config >/dev/null && pkg-config --exists "$1"; } || [ -f "$2" ]; }
has_lib libcjson /usr/include/cjson/cJSON.h || need+=(libcjson-dev)
has_lib libcurl /usr/include/curl/curl.h || [ -f "/usr/include/$(uname -m)-linux-gnu/curl/curl.h" ] ||
  need+=(libcurl4-openssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${need[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    die "missing build dependencies: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})"
  fi
fi

# The source, into a fresh folder, checked before it is used.
fresh="$out/lpac.new"
rm -rf "$fresh"
if [ -n "${LPAC_SOURCE_TARBALL:-}" ]; then
  [ -f "$LPAC_SOURCE_TARBALL" ] || die "LPAC_SOURCE_TARBALL=$LPAC_SOURCE_TARBALL: no such file"
  say "unpacking $LPAC_SOURCE_TARBALL"
  mkdir -p "$fresh.unpack"
  tar -xzf "$LPAC_SOURCE_TARBALL" -C "$fresh.unpack"
  top=("$fresh.unpack"/*)
  [ ${#top[@]} = 1 ] && [ -d "${top[0]}" ] ||
    die "$LPAC_SOURCE_TARBALL must hold one top-level folder (lpac's source)"
  mv "${top[0]}" "$fresh"
  rm -rf "$fresh.unpack"
else
  say "fetching lpac $LPAC_COMMIT from $LPAC_GIT_URL"
  git init -q "$fresh"
  # A single commit by its id; a server that refuses that gets a full clone instead.
  if ! git -C "$fresh" fetch -q --depth 1 "$LPAC_GIT_URL" "$LPAC_COMMIT" 2>/dev/null; then
    git -C "$fresh" fetch -q "$LPAC_GIT_URL" ||
      die "cannot fetch $LPAC_GIT_URL (no internet? set LPAC_SOURCE_TARBALL to a source tarball)"
  fi
  git -C "$fresh" -c advice.detachedHead=false checkout -q "$LPAC_COMMIT" ||
    die "$LPAC_GIT_URL has no commit $LPAC_COMMIT"
  rm -rf "$fresh/.git"
fi
got=$(tree_sha256 "$fresh")
if [ "$got" != "$LPAC_TREE_SHA256" ]; then
  rm -rf "$fresh"
  die "the lpac source is not the pinned one: tree checksum $got, expected $LPAC_TREE_SHA256"
fi

rm -rf "$src"
mv "$fresh" "$src"
mkdir -p "$src/build"
(
  cd "$src/build"
  cmake .. -DUSE_SYSTEM_DEPS=ON -DLPAC_WITH_APDU_PCSC=OFF >&2
  make -j"$(nproc 2>/dev/null || echo 2)" >&2
)
"$binary" driver list >&2
echo "$LPAC_TREE_SHA256" >"$stamp"
say "built $binary"
echo "$binary"
