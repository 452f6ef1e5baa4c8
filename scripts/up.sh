#!/usr/bin/env bash
# `make up`: Postgres, the broker, the four services and the lake writer,
# each started only if it is not already running. Safe to run again at any time.
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$ROOT/scripts/ensure-postgres.sh"
"$ROOT/scripts/ensure-broker.sh"
"$ROOT/scripts/ensure-redis.sh"

log "building the services ($PROFILE)"
profile_flag=()
[[ "$PROFILE" == release ]] && profile_flag=(--release)
cargo build --locked "${profile_flag[@]}" --bins -p flight-inventory -p booking -p payment -p notification -p contrail-admin -p contrail-lake

log "provisioning the database, roles and schemas"
CONTRAIL_ADMIN_URL="$PG_URL" "$BIN_DIR/contrail-admin" provision --database contrail

log "preparing the development token issuer and secrets (.local/auth, never committed)"
"$BIN_DIR/contrail-admin" dev-auth --dir "$AUTH_DIR"
# Every service trusts the issuer's public key; booking calls the others
# with a service token and keys its request fingerprints with a secret.
for prefix in FLIGHT_INVENTORY PAYMENT NOTIFICATION BOOKING; do
  export "${prefix}__AUTH__PUBLIC_KEY_FILE=$AUTH_DIR/issuer.pub.pem"
done
# flight-inventory serves search, detail and availability through the Redis read cache.
export FLIGHT_INVENTORY__CACHE__REDIS_URL="${FLIGHT_INVENTORY__CACHE__REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT}"
export BOOKING__DELEGATES__SERVICE_TOKEN_FILE="$AUTH_DIR/booking.token"
export BOOKING__IDEMPOTENCY__FINGERPRINT_KEY_FILE="$AUTH_DIR/fingerprint.key"
# `make observe` leaves the OTLP endpoint of its trace store here.
if [[ -f "$RUN_DIR/observe.env" ]]; then
  log "exporting traces to the trace store of make observe"
  source "$RUN_DIR/observe.env"
fi

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health/ready" 2>/dev/null; }

for entry in "${SERVICES[@]}"; do
  name=${entry%%:*}
  pid_file="$RUN_DIR/$name.pid"
  if pid_alive "$pid_file"; then
    log "$name is already running (pid $(<"$pid_file"))"
    continue
  fi
  nohup "$BIN_DIR/$name" serve >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$pid_file"
  log "started $name (pid $!)"
done

for entry in "${SERVICES[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  if ! wait_until 120 "" ready "$port"; then
    tail -n 20 "$LOG_DIR/$name.log" >&2 || true
    die "$name did not become ready on port $port; see $LOG_DIR/$name.log"
  fi
done

log "scheduling the sample network (once; skipped when flights exist)"
"$BIN_DIR/flight-inventory" seed-sample-network >>"$LOG_DIR/flight-inventory.log" 2>&1 \
  || die "seeding the sample network failed; see $LOG_DIR/flight-inventory.log"

# The data lake's writer: domain events into Parquet under .local/lake
# (docs/lake.md). Started after the services, which create its topics.
if pid_alive "$LAKE_PID_FILE"; then
  log "the lake writer is already running (pid $(<"$LAKE_PID_FILE"))"
else
  CONTRAIL_LAKE_ROOT="$LAKE_DIR" CONTRAIL_LAKE_BROKERS="$BROKER_HOST:$BROKER_PORT" \
    CONTRAIL_LAKE_BATCH_WAIT_MS="${CONTRAIL_LAKE_BATCH_WAIT_MS:-1000}" \
    nohup "$BIN_DIR/contrail-lake" write >>"$LOG_DIR/lake-writer.log" 2>&1 &
  echo $! >"$LAKE_PID_FILE"
  log "started the lake writer (pid $!)"
fi

log "Contrail is up"
for entry in "${SERVICES[@]}"; do
  printf '    %-17s http://127.0.0.1:%s   (logs: .local/logs/%s.log)\n' "${entry%%:*}" "${entry##*:}" "${entry%%:*}"
done
printf '    %-17s %s:%s\n' broker "$BROKER_HOST" "$BROKER_PORT"
printf '    %-17s %s   (logs: .local/logs/lake-writer.log; query: contrail-lake query "SELECT …")\n' lake "$LAKE_DIR"
