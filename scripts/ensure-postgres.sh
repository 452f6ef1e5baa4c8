#!/usr/bin/env bash
# Makes sure Postgres answers at CONTRAIL_ADMIN_URL (default: the local
# development cluster on 127.0.0.1:5432). When nothing answers there:
#   - installs PostgreSQL 15 from Debian's packages if it is missing;
#   - creates the development cluster `15/contrail` once: listening on
#     loopback only (the default listen_addresses), trusting loopback connections (a development setting: the
#     services then need no passwords; a shared or production cluster uses
#     CONTRAIL_DB_PASSWORD_<ROLE> and TLS instead), with pg_stat_statements
#     loaded for profiling, and never started at boot;
#   - starts it and records that in .local/run/postgres.started, so `make down`
#     stops it again.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PG_VERSION=15
PG_CLUSTER=contrail

pg_ready() { pg_isready -q -d "$PG_URL" 2>/dev/null; }

if pg_ready; then
  exit 0
fi
if [[ -n "${CONTRAIL_ADMIN_URL:-}" ]]; then
  die "Postgres does not answer at CONTRAIL_ADMIN_URL ($CONTRAIL_ADMIN_URL)"
fi

if [[ ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] || ! command -v pg_createcluster >/dev/null; then
  log "installing PostgreSQL $PG_VERSION from Debian's packages (once; about a minute)"
  apt_install "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION"
fi

if ! pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2}' | grep -qx "$PG_VERSION $PG_CLUSTER"; then
  log "creating the development cluster $PG_VERSION/$PG_CLUSTER (loopback only, trusts loopback)"
  # Four services x 10 connections, the tests' pools and the tools fit the default 100.
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port 5432 --start-conf manual \
    -o max_connections=100 \
    -o shared_buffers=1GB \
    -o max_wal_size=4GB \
    -o shared_preload_libraries=pg_stat_statements \
    -o pg_stat_statements.track=all \
    -- --auth-host=trust --auth-local=peer --encoding=UTF8 >/dev/null \
    || die "could not create the Postgres cluster $PG_VERSION/$PG_CLUSTER"
fi

if port_open 127.0.0.1 5432; then
  die "something listens on 127.0.0.1:5432 but Postgres does not answer at $PG_URL; stop it or set CONTRAIL_ADMIN_URL"
fi
log "starting the Postgres cluster $PG_VERSION/$PG_CLUSTER"
pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start \
  || die "could not start Postgres; see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
echo "$PG_VERSION $PG_CLUSTER" >"$RUN_DIR/postgres.started"
wait_until 60 "Postgres is ready" pg_ready || die "Postgres did not become ready within 60 s"
