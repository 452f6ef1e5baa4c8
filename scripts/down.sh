#!/usr/bin/env bash
# `make down`: stops exactly what `make up` (or `make test`) started.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# The lake writer first: it finishes and commits its batch while the broker is there.
stop_pid_file "$LAKE_PID_FILE" 20
# Services next, in reverse start order (booking, the orchestrator, first),
# so they drain while the broker is still there.
for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
  stop_pid_file "$RUN_DIR/${SERVICES[i]%%:*}.pid" 20
done
stop_pid_file "$RUN_DIR/broker.pid" 15
# What `make observe` started: Jaeger, Prometheus, Alertmanager.
"$ROOT/scripts/observe.sh" down
stop_pid_file "$RUN_DIR/redis.pid" 10
if [[ -f "$RUN_DIR/postgres.started" ]]; then
  read -r version cluster <"$RUN_DIR/postgres.started"
  log "stopping the Postgres cluster $version/$cluster that make up started"
  pg_ctlcluster --skip-systemctl-redirect "$version" "${cluster:-main}" stop || warn "could not stop Postgres"
  rm -f "$RUN_DIR/postgres.started"
fi
log "down"
