#!/usr/bin/env bash
# Build Fraunhofer HHI's VVenC (the VVC / H.266 encoder) once, into a cache outside the checkout.
#
#   bash scripts/build_vvenc.sh        # prints the path of vvencapp on stdout
#
# The source is third_party/vvenc/vvenc-1.9.1.tar.gz, shipped in this repository with its licence
# (override with TOSC_VVENC_TARBALL); its sha256 must equal the one recorded beside it in
# third_party/vvenc/vvenc-1.9.1.tar.gz.sha256. The build lands in
#   ${TOSC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tosc}/vvenc-<first 16 hex of the sha256>/bin/vvencapp
# which is where tosc.source_coding.classic.vvc looks (or set TOSC_VVENCAPP). When that binary
# exists and runs, this script is a no-op that takes well under a second. Concurrent runs are
# serialised with flock; an interrupted build leaves no half-installed cache directory.
# Build parallelism: TOSC_BUILD_JOBS (default: number of CPUs). Link-time optimisation is off:
# it roughly doubles the build time on small machines for no measurable effect at 28x28.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKSUM_FILE=third_party/vvenc/vvenc-1.9.1.tar.gz.sha256
EXPECTED_SHA256=$(cut -d' ' -f1 "$CHECKSUM_FILE")
TARBALL=${TOSC_VVENC_TARBALL:-third_party/vvenc/vvenc-1.9.1.tar.gz}
CACHE_ROOT=${TOSC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tosc}
PREFIX="$CACHE_ROOT/vvenc-${EXPECTED_SHA256:0:16}"
APP="$PREFIX/bin/vvencapp"
JOBS=${TOSC_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { printf '[build_vvenc] %s\n' "$*" >&2; }
built() { [ -x "$APP" ] && "$APP" --version >/dev/null 2>&1; }

if built; then
  echo "$APP"
  exit 0
fi

if [ ! -f "$TARBALL" ]; then
  say "error: VVenC source tarball not found at $TARBALL (set TOSC_VVENC_TARBALL)"
  exit 2
fi
actual=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ "$actual" != "$EXPECTED_SHA256" ]; then
  say "error: $TARBALL has sha256 $actual, expected $EXPECTED_SHA256"
  exit 2
fi
for tool in cmake g++ tar flock; do
  command -v "$tool" >/dev/null || { say "error: $tool is needed to build VVenC"; exit 2; }
done

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.vvenc.lock"
flock 9
if built; then  # another process finished the build while we waited for the lock
  echo "$APP"
  exit 0
fi

work=$(mktemp -d "$CACHE_ROOT/.vvenc-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "building VVenC 1.9.1 into $PREFIX with $JOBS job(s) (measured: 4 minutes with 1 job)"
tar xzf "$TARBALL" -C "$work"
cmake -S "$work/vvenc-1.9.1" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DVVENC_ENABLE_LINK_TIME_OPT=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >"$work/cmake.log" 2>&1 \
  || { tail -n 30 "$work/cmake.log" >&2; say "error: cmake configure failed"; exit 1; }
cmake --build "$work/build" -j "$JOBS" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; say "error: build failed"; exit 1; }
cmake --install "$work/build" >"$work/install.log" 2>&1 \
  || { tail -n 30 "$work/install.log" >&2; say "error: install failed"; exit 1; }
"$work/prefix/bin/vvencapp" --version >/dev/null 2>&1 \
  || { say "error: the freshly built vvencapp does not run"; exit 1; }

rm -rf "$PREFIX"
mv "$work/prefix" "$PREFIX"  # same filesystem: the rename makes the install all-or-nothing
say "ready: $APP"
echo "$APP"
