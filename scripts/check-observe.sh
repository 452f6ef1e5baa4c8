#!/usr/bin/env bash
# The end-to-end check of `make observe`, against `make up`'s running system:
#   1. books flights through the public API (scripts/check-observe.py traffic):
#      a booking whose payment fails twice and is retried by the saga's timer,
#      then cancelled, and a mix of approved, declined and sold-out bookings;
#   2. finds that booking's trace in Jaeger and checks every hop is in it;
#   3. waits for Prometheus to scrape, then evaluates every dashboard panel
#      query and every alert rule's metric selectors: none may be empty.
# Usage: make up && make observe && scripts/check-observe.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"

ADMIN_CLI="$BIN_DIR/contrail-admin"
[[ -x "$ADMIN_CLI" ]] || die "no $ADMIN_CLI: run make up first"
pid_alive "$RUN_DIR/prometheus.pid" || die "Prometheus is not running: run make observe first"

customer=cust-observe
customer_token=$("$ADMIN_CLI" token --customer "$customer")
admin_token=$("$ADMIN_CLI" token --admin)

log "booking through the public API"
booking_id=$(python3 "$ROOT/scripts/check-observe.py" traffic --customer "$customer" \
  --customer-token "$customer_token" --admin-token "$admin_token")
log "booking $booking_id: retried payment, confirmed, cancelled"

log "looking for its trace in Jaeger"
python3 "$ROOT/scripts/check-observe.py" trace --booking "$booking_id"

log "waiting for two scrapes and the saga census (15 s), then querying Prometheus"
sleep 15 # the scrape interval and the census period are clocks, not events to poll for
python3 "$ROOT/scripts/check-observe.py" dashboards
log "observability checks passed"
