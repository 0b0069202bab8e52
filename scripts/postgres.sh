#!/usr/bin/env bash
# Start Debian's PostgreSQL and make the role and database the store tests use
# (postgresql://assay:assay@127.0.0.1:5432/assay_test, or $ASSAY_TEST_POSTGRES). Idempotent.
# Run as root (or with sudo); called by scripts/setup.sh.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! command -v pg_lsclusters >/dev/null; then
  echo "postgres: postgresql is not installed (scripts/setup.sh installs it from .ci/apt-packages)" >&2
  exit 1
fi
read -r ver name _ < <(pg_lsclusters -h | head -n 1) || true
if [ -z "${ver:-}" ]; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  name=main
  $SUDO pg_createcluster "$ver" "$name" >/dev/null
fi
status=$(pg_lsclusters -h | awk -v v="$ver" -v n="$name" '$1==v && $2==n {print $4}')
if [ "$status" != "online" ]; then
  $SUDO pg_ctlcluster "$ver" "$name" start
fi
port=$(pg_lsclusters -h | awk -v v="$ver" -v n="$name" '$1==v && $2==n {print $3}')
for _ in $(seq 1 30); do
  if $SUDO -u postgres psql -p "$port" -qAtc 'SELECT 1' >/dev/null 2>&1 || \
     runuser -u postgres -- psql -p "$port" -qAtc 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 0.5
done
psql_pg() { if [ -n "$SUDO" ]; then sudo -u postgres psql -p "$port" -qAt "$@"; else runuser -u postgres -- psql -p "$port" -qAt "$@"; fi; }
if [ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname='assay'")" != 1 ]; then
  psql_pg -c "CREATE ROLE assay LOGIN PASSWORD 'assay'"
fi
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname='assay_test'")" != 1 ]; then
  psql_pg -c "CREATE DATABASE assay_test OWNER assay"
fi
echo "postgres: PostgreSQL $ver/$name on port $port; test store postgresql://assay:assay@127.0.0.1:$port/assay_test" >&2
