#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (network tests included; they
# skip with a loud reason when the Debian mirror cannot be reached).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
if [ -x .venv/bin/python ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
ruff check src tests bench fuzz || rc=1
mypy || rc=1
# On every core, a test file per worker at a time (module fixtures such as example builds run
# once); ASSAY_TEST_JOBS=1 runs serially.
jobs=${ASSAY_TEST_JOBS:-auto}
par=()
if [ "$jobs" != 1 ] && python3 -c "import xdist" 2>/dev/null; then par=(-n "$jobs" --dist loadfile); fi
python3 -m pytest -q -p no:cacheprovider "${par[@]}" tests "$@"
prc=$?
if [ "$prc" = 5 ]; then echo "test: pytest collected no tests" >&2; exit 1; fi
[ "$prc" = 0 ] || rc=$prc
exit $rc
