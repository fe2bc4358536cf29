#!/usr/bin/env bash
# The build stage of the container image, in one place: the Dockerfile runs this script, and
# tests/check-packaging runs the very same script in CI (where no container engine exists), so
# the recipe that ships is the recipe that is tested.
#
#   packaging/container-build.sh SOURCE_DIR BUILD_DIR DESTDIR
#
# Configures a release build with prefix /usr (the binary lands in DESTDIR/usr/bin/tracehop, the
# path the systemd unit and the image use), compiles it and installs it into DESTDIR. BUILD_DIR
# must not exist yet or be a previous build of this script. Needs the Debian 12 packages that the
# Dockerfile's build stage installs.
set -euo pipefail

if (($# != 3)); then
    echo "usage: $0 SOURCE_DIR BUILD_DIR DESTDIR" >&2
    exit 2
fi
source_dir=$1
build_dir=$2
destdir=$3

# -Dsystemd=enabled: sd_notify and socket activation are compiled in for certain (the systemd
# unit is Type=notify and would time out waiting for READY=1 without them), never dropped
# silently because libsystemd-dev is missing.
# -Dwerror=false: a packaging build must not fail on a warning that a newer compiler invents;
# CI's own builds (tests/run-all) keep -Werror. b_ndebug follows the buildtype (if-release).
# -Dtests=disabled: no test code is compiled, and Check is not needed.
# meson install puts, besides the binary, the systemd units in /usr/lib/systemd/system, the man
# page tracehop(8) and the example config in /usr/share/doc/tracehop/examples/.
meson setup "$build_dir" "$source_dir" \
    --buildtype=release \
    --prefix=/usr \
    -Dsystemd=enabled \
    -Dtests=disabled \
    -Dwerror=false
meson compile -C "$build_dir"
meson install -C "$build_dir" --destdir "$destdir" --strip
