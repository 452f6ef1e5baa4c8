#!/usr/bin/env bash
# `make demo`: brings the stack up, then walks through the API with curl.
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$ROOT/scripts/up.sh"

BOOKING=http://127.0.0.1:8080
INVENTORY=http://127.0.0.1:8081
PAYMENT=http://127.0.0.1:8082
NOTIFICATION=http://127.0.0.1:8083

# Development tokens from the issuer `make up` created (.local/auth): an
# operator, the demo customer, and another customer.
token() { "$BIN_DIR/contrail-admin" token --dir "$AUTH_DIR" "$@"; }
ADMIN_TOKEN=$(token --admin)
CUSTOMER_TOKEN=$(token --customer demo-customer)
OTHER_TOKEN=$(token --customer someone-else)
as_admin=(-H "Authorization: Bearer $ADMIN_TOKEN")
as_customer=(-H "Authorization: Bearer $CUSTOMER_TOKEN")

step() { printf '\n\033[1;36m### %s\033[0m\n' "$*"; }
show() {
  # The tokens are long and say nothing to a reader: shown by name.
  printf '\033[2m$ curl %s\033[0m\n' "$*" | sed -E 's/Bearer [A-Za-z0-9._-]+/Bearer $TOKEN/'

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
show "${as_customer[@]}" "$INVENTORY/flights?origin=ICN&date=$tomorrow&limit=3"

step "Schedule a flight (admin), then look at it through its events"
scheduled=$(curl -sS -X POST "$INVENTORY/flights" "${as_admin[@]}" -H 'Content-Type: application/json' -d "{
  \"flight_number\": \"CT901\", \"origin\": \"ICN\", \"destination\": \"SFO\",
  \"departure\": \"$(date -u -d '+2 days' +%FT%H:00:00Z)\", \"arrival\": \"$(date -u -d '+2 days 11 hours' +%FT%H:00:00Z)\",
  \"capacity\": 180, \"fare\": {\"amount\": \"899.00\", \"currency\": \"USD\"}}")
python3 -m json.tool <<<"$scheduled"
flight_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["flight_id"])' <<<"$scheduled")
before_fare_change=$(date -u +%FT%T.%NZ)
show -X POST "$INVENTORY/flights/$flight_id/fare" "${as_admin[@]}" -H 'Content-Type: application/json' \
  -d '{"fare": {"amount": "949.00", "currency": "USD"}}'
show "${as_customer[@]}" "$INVENTORY/flights/$flight_id/quote?seats=2"
show "${as_customer[@]}" "$INVENTORY/flights/$flight_id/availability"
echo "Time travel: the flight as it was before the fare changed"
show "${as_customer[@]}" "$INVENTORY/flights/$flight_id?as_of=$before_fare_change"
show "${as_customer[@]}" "$INVENTORY/flights/$flight_id/history"

step "Credit a customer's miles (append-only ledger; the Idempotency-Key makes a retry harmless)"
key="demo-credit-$(date +%s)"
for attempt in first retry; do
  echo "($attempt)"
  show -X POST "$PAYMENT/accounts/demo-customer/miles/credits" "${as_admin[@]}" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
    -d '{"miles": 25000, "reason": "demo welcome bonus"}'
done
show "${as_customer[@]}" "$PAYMENT/accounts/demo-customer/miles"

# Prints a booking's routing slip as a short story.
slip() { python3 "$ROOT/scripts/show-booking.py"; }

book() { # book KEY BODY: POST /bookings, waiting up to 20 s for the saga to settle
  curl -sS -X POST "$BOOKING/bookings" "${as_customer[@]}" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $1" -H 'Prefer: wait=20' -d "$2"
}

booking_body() { # booking_body CARD MILES
  local card=""
  [[ -n "$1" ]] && card="\"card\": {\"number\": \"$1\", \"expiry\": \"12/35\", \"cvc\": \"123\"},"
  printf '{"customer_id": "demo-customer", "flight_id": "%s",
    "passengers": [{"first_name": "Ada", "last_name": "Lovelace"}, {"first_name": "Alan", "last_name": "Turing"}],
    "payment": {%s "miles": %s},
    "contact": {"email": "ada@example.com", "phone": "+821012345678"}}' "$flight_id" "$card" "$2"
}

run_id=$(date +%s)
step "Book two seats with a card: hold seats -> take payment -> confirm (the pivot) -> send confirmation"
echo "booking asks flight-inventory for a quote and payment for a card token over HTTP, then runs the saga over Kafka"
confirmed=$(book "demo-confirmed-$run_id" "$(booking_body 4242424242424242 0)")
slip <<<"$confirmed"
confirmed_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["booking_id"])' <<<"$confirmed")
show "${as_customer[@]}" "$PAYMENT/payments?booking_id=$confirmed_id"
show "${as_customer[@]}" "$NOTIFICATION/notifications?booking_id=$confirmed_id"

step "A declined card: the saga compensates in reverse (the seats are released; nothing was charged)"
failed=$(book "demo-declined-$run_id" "$(booking_body 4000000000000002 0)")
slip <<<"$failed"

step "A flaky gateway: the payment step is retried with backoff before anything is compensated"
flaky=$(book "demo-flaky-$run_id" "$(booking_body 4000000000000119 0)")
slip <<<"$flaky"

step "Card + miles, then the customer cancels: refunds per method, seats released, a cancellation notice"
mixed=$(book "demo-mixed-$run_id" "$(booking_body 4242424242424242 20000)")
slip <<<"$mixed"
mixed_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["booking_id"])' <<<"$mixed")
show "${as_customer[@]}" "$PAYMENT/accounts/demo-customer/miles"
curl -sS -o /dev/null -X POST "$BOOKING/bookings/$mixed_id/cancel" "${as_customer[@]}" -H 'Content-Type: application/json' -d '{"reason": "plans changed"}'
for _ in $(seq 1 100); do
  cancelled=$(curl -sS "${as_customer[@]}" "$BOOKING/bookings/$mixed_id")
  [[ $(python3 -c 'import json,sys; print(json.load(sys.stdin)["routing_slip"]["status"])' <<<"$cancelled") == compensated ]] && break
  sleep 0.2
done
slip <<<"$cancelled"
show "${as_customer[@]}" "$PAYMENT/payments?booking_id=$mixed_id"
show "${as_customer[@]}" "$PAYMENT/accounts/demo-customer/miles"

step "The same request again with the same Idempotency-Key: the same booking, not a second one"
again=$(book "demo-confirmed-$run_id" "$(booking_body 4242424242424242 0)")
python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["booking_id"], b["status"])' <<<"$again"
show "${as_customer[@]}" "$INVENTORY/flights/$flight_id/availability"

step "The operator's view: sagas by status, a saga's timeline"
show "${as_admin[@]}" "$BOOKING/sagas?status=compensated&limit=3"
show "${as_admin[@]}" "$BOOKING/sagas/$confirmed_id/timeline"

step "Who may do what: no token is 401; another customer's booking does not exist for them (404, not 403)"
show -i "$BOOKING/bookings/$confirmed_id"
show -i -H "Authorization: Bearer $OTHER_TOKEN" "$BOOKING/bookings/$confirmed_id"
show -i "${as_customer[@]}" "$BOOKING/sagas"

step "Bad input gets a problem+json answer, never a 500"
show -i -X POST "$BOOKING/bookings" "${as_customer[@]}" -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-bad' \
  -d '{"customer_id": "demo-customer", "flight_id": "not-a-flight"}'

show -i -X POST "$PAYMENT/accounts/demo-customer/miles/credits" "${as_admin[@]}" \
  -H 'Content-Type: application/json' -d '{"miles": "lots"'
show -i "${as_customer[@]}" "$NOTIFICATION/notifications?booking_id=not-a-uuid"

step "Prometheus metrics (excerpt)"
curl -sS "$PAYMENT/metrics" | grep -E '^http_requests_total' | head -n 5

step "The data lake: what the demo just did, as Parquet, in SQL (docs/lake.md)"
lake() { CONTRAIL_LAKE_ROOT="$LAKE_DIR" "$BIN_DIR/contrail-lake" "$@"; }
# The writer closes a batch about a second after its first event; wait for the cancellation.
for _ in $(seq 1 150); do
  lake query "SELECT count(*) AS n FROM booking_events WHERE booking_id = '$mixed_id' AND message_type = 'booking.BookingCancelled.v1'" \
    | grep -qE '^\| 1 +\|$' && break
  sleep 0.2
done
lake query "SELECT booking_id, message_type, origin, destination, seats, total_amount, currency, occurred_at
            FROM booking_events WHERE booking_id IN ('$confirmed_id', '$mixed_id') ORDER BY occurred_at"
lake query "SELECT CAST(created_at AS DATE) AS day, origin, destination, count(*) AS bookings, sum(total_amount) AS revenue, currency
            FROM booking_events WHERE message_type = 'booking.BookingConfirmed.v1'
            GROUP BY 1, 2, 3, currency ORDER BY day, origin, destination"
lake query "SELECT method, count(*) AS refunds, sum(amount) AS refunded FROM payment_events
            WHERE message_type = 'payment.RefundIssued.v1' GROUP BY method ORDER BY method"
CONTRAIL_LAKE_SOURCE_URL="${PG_URL%/*}/contrail" lake verify || warn "the lake differs from the services (the writer may still be catching up)"

printf '\nThe operator console: open %s/console and paste an admin token (contrail-admin token --admin).\n' "$BOOKING"
printf '\nThe stack keeps running: `make status` shows it, `make down` stops it.\n'
