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
