#!/usr/bin/env bash
# Set up everything matbrain needs in a virtual environment (default .venv; MATBRAIN_VENV to move it).
# Idempotent: a rerun with unchanged requirements does nothing; pip's download cache makes a
# rebuild cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MATBRAIN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "matbrain needs Python >= 3.10")'
stamp="$(cat requirements.txt requirements-dev.txt requirements-ace.txt requirements-dft.txt scripts/gpaw-siteconfig.py pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$VENV/.matbrain-stamp" ] && [ "$(cat "$VENV/.matbrain-stamp")" = "$stamp" ]; then
  echo "matbrain environment up to date ($VENV)"
  exit 0
fi
echo "setting up matbrain in $VENV (first time: about 10 minutes)"
"$PYTHON" -m venv "$VENV"
# torch first, pinned exactly: a looser pin would pull a multi-GB CUDA build on a CPU machine
"$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -r requirements-ace.txt
# pacemaker (ACE): see requirements-ace.txt for why tensorpotential goes in without its deps
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "tensorpotential==0.6.2.1"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "python-ace==0.4.0rc1" "numpy<2.4" "torch==2.13.0"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
bash scripts/install-gpaw.sh "$VENV"
# PostgreSQL (optional: the shared active-learning store; its tests start a throwaway server)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (apt-get) for the shared-store tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 \
      || echo "WARNING: apt-get could not install PostgreSQL: its tests will be skipped" >&2
  else
    echo "NOTE: PostgreSQL not found: the shared-store tests will be skipped (SQLite is tested)" >&2
  fi
fi
"$VENV/bin/python" -c "import matbrain, torch, e3nn, pyace; print('matbrain', matbrain.__version__, 'torch', torch.__version__, 'e3nn', e3nn.__version__, 'pyace ok')"
test -x "$VENV/bin/pacemaker" || { echo "pacemaker was not installed" >&2; exit 1; }
echo "$stamp" > "$VENV/.matbrain-stamp"
