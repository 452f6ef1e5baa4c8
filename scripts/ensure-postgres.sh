#!/usr/bin/env bash
# Makes sure Postgres answers at CONTRAIL_ADMIN_URL; starts a local cluster
# that is installed but stopped (and records that, so `make down` stops it again).
set -euo pipefail
source "$(dirname "$0")/common.sh"

pg_ready() { pg_isready -q -d "$PG_URL" 2>/dev/null; }

if pg_ready; then
  exit 0
fi
command -v pg_isready >/dev/null || die "Postgres client tools are missing: install postgresql-15 (apt-get install postgresql)"
if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting the local Postgres $version cluster"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  echo "$version" >"$RUN_DIR/postgres.started"
  wait_until 60 "Postgres is ready" pg_ready || die "Postgres did not become ready within 60 s"
else
  die "Postgres does not answer at $PG_URL and no local cluster is installed"
fi
