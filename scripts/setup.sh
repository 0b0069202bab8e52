#!/usr/bin/env bash
# Install what assay and its tests need on Debian 12 / Ubuntu: the Debian packages listed in
# .ci/apt-packages and assay itself (editable, with test extras). Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
mapfile -t pkgs < <(grep -v '^\s*#' .ci/apt-packages | sed 's/\s.*//' | grep -v '^$' | sort -u)
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}" </dev/null
# A distribution Python that is "externally managed" (PEP 668, Debian 12's own python3) gets a
# virtual environment in .venv; a Python of one's own (pyenv, CI) gets assay installed directly.
PY=python3
if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  $SUDO apt-get install -y -q --no-install-recommends python3-venv </dev/null
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
  echo "setup: using the virtual environment .venv (run: . .venv/bin/activate)" >&2
fi
$PY -m pip install -q -e '.[test]' </dev/null
echo "setup: assay $($PY -c 'import assay; print(assay.__version__)') installed" >&2
# The evidence store's tests (and fleet use) need a running PostgreSQL: start it, make the role.
bash scripts/postgres.sh
