#!/usr/bin/env bash
# Build GPAW (the default DFT oracle) into the virtual environment given as $1.
# GPAW needs the libxc and OpenBLAS headers: they are installed with apt-get when this runs as
# root (or with passwordless sudo), and then a failed build fails the setup. Without root the
# build is skipped with a warning: everything else works, the GPAW oracle says how to install it,
# and its tests are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="$1"
if "$VENV/bin/python" -c "import gpaw" 2>/dev/null; then
  exit 0
fi
# root (or passwordless sudo) can install everything GPAW needs: then a failure is an error
can_install=false
if [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then can_install=true; fi
have_headers() { [ -f /usr/include/xc.h ] && { [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || ls /usr/lib/*/libopenblas.so >/dev/null 2>&1; }; }
if ! have_headers; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
  fi
  if [ "$SUDO" != none ] && command -v apt-get >/dev/null; then
    echo "installing libxc-dev and libopenblas-dev for GPAW (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q libxc-dev libopenblas-dev >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libxc-dev libopenblas-dev >/dev/null 2>&1; }
  fi
fi
if ! have_headers; then
  if $can_install && command -v apt-get >/dev/null; then
    echo "ERROR: apt-get could not install libxc-dev and libopenblas-dev: GPAW (the DFT oracle) cannot be built." >&2
    exit 1
  fi
  echo "WARNING: libxc/OpenBLAS headers not found and apt-get not usable: GPAW (the DFT oracle) is not installed." >&2
  echo "         Install libxc-dev and libopenblas-dev, then rerun: bash scripts/install-gpaw.sh $VENV" >&2
  exit 0
fi
echo "building GPAW (1-3 minutes the first time; pip caches the wheel)"
if GPAW_CONFIG="$PWD/scripts/gpaw-siteconfig.py" "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-dft.txt "numpy<2.4"; then
  "$VENV/bin/python" -c "import gpaw; print('gpaw', gpaw.__version__)"
elif $can_install; then
  echo "ERROR: the GPAW build failed (see the pip output above); as root setup needs the DFT oracle." >&2
  exit 1
else
  echo "WARNING: the GPAW build failed: the GPAW oracle is unavailable (see the pip output above)." >&2
fi
exit 0
