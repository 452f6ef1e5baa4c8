#!/usr/bin/env bash
# `make demo`: brings the stack up, then walks through the API with curl.
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$ROOT/scripts/up.sh"

BOOKING=http://127.0.0.1:8080
INVENTORY=http://127.0.0.1:8081
PAYMENT=http://127.0.0.1:8082
NOTIFICATION=http://127.0.0.1:8083

step() { printf '\n\033[1;36m### %s\033[0m\n' "$*"; }
show() {
  printf '\033[2m$ curl %s\033[0m\n' "$*"
  local output
  output=$(curl -sS "$@")
  # Pretty-print a JSON body; anything else (headers with -i) as it came.
  python3 -m json.tool <<<"$output" 2>/dev/null || printf '%s\n' "$output"
  echo
}

step "Every service reports its dependencies (database, broker)"
for url in "$BOOKING" "$INVENTORY" "$PAYMENT" "$NOTIFICATION"; do
  show "$url/health/ready"
done

step "flight-inventory, the delegate service: search the read model"
tomorrow=$(date -u -d tomorrow +%F)
show "$INVENTORY/flights?origin=ICN&date=$tomorrow&limit=3"

step "Schedule a flight (admin), then look at it through its events"
scheduled=$(curl -sS -X POST "$INVENTORY/flights" -H 'Content-Type: application/json' -d "{
  \"flight_number\": \"CT901\", \"origin\": \"ICN\", \"destination\": \"SFO\",
  \"departure\": \"$(date -u -d '+2 days' +%FT%H:00:00Z)\", \"arrival\": \"$(date -u -d '+2 days 11 hours' +%FT%H:00:00Z)\",
  \"capacity\": 180, \"fare\": {\"amount\": \"899.00\", \"currency\": \"USD\"}}")
python3 -m json.tool <<<"$scheduled"
flight_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["flight_id"])' <<<"$scheduled")
before_fare_change=$(date -u +%FT%T.%NZ)
show -X POST "$INVENTORY/flights/$flight_id/fare" -H 'Content-Type: application/json' \
  -d '{"fare": {"amount": "949.00", "currency": "USD"}}'
show "$INVENTORY/flights/$flight_id/quote?seats=2"
show "$INVENTORY/flights/$flight_id/availability"
echo "Time travel: the flight as it was before the fare changed"
show "$INVENTORY/flights/$flight_id?as_of=$before_fare_change"
show "$INVENTORY/flights/$flight_id/history"

step "Credit a customer's miles (append-only ledger; the Idempotency-Key makes a retry harmless)"
key="demo-credit-$(date +%s)"
for attempt in first retry; do
  echo "($attempt)"
  show -X POST "$PAYMENT/accounts/demo-customer/miles/credits" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
    -d '{"miles": 25000, "reason": "demo welcome bonus"}'
done
show "$PAYMENT/accounts/demo-customer/miles"

step "Bad input gets a problem+json answer, never a 500"
show -i -X POST "$PAYMENT/accounts/demo-customer/miles/credits" \
  -H 'Content-Type: application/json' -d '{"miles": "lots"'
show -i "$NOTIFICATION/notifications?booking_id=not-a-uuid"

step "Prometheus metrics (excerpt)"
curl -sS "$PAYMENT/metrics" | grep -E '^http_requests_total' | head -n 5

printf '\nThe stack keeps running: `make status` shows it, `make down` stops it.\n'
