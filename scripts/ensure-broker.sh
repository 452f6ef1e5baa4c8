#!/usr/bin/env bash
# Makes sure a Kafka-protocol broker answers on 127.0.0.1:$CONTRAIL_BROKER_PORT.
# If none does, installs tansu (a Kafka-compatible broker from crates.io) when
# missing and starts it with durable SQLite storage under .local/broker/.
# The services only speak the Kafka protocol; any Kafka broker on that port works.
set -euo pipefail
source "$(dirname "$0")/common.sh"

broker_listening() { port_open "$BROKER_HOST" "$BROKER_PORT"; }
broker_answers() { python3 "$ROOT/scripts/broker-answers.py" "$BROKER_HOST" "$BROKER_PORT"; }

# tansu 0.6's SQLite schema lacks an index its fetches need (see the script).
index_storage() {
  [[ -f "$BROKER_DIR/tansu.db" ]] || return 0
  python3 "$ROOT/scripts/tansu-index.py" "$BROKER_DIR/tansu.db" ||
    warn "could not index the broker's storage; its fetches will slow down as it grows"
}

if broker_listening; then
  if broker_answers; then
    if pid_alive "$RUN_DIR/broker.pid"; then index_storage; fi
    exit 0
  fi
  # Listening but not answering: tansu 0.6 can lose its storage task (a panic
  # on some idempotent-producer states) and keep the port open. Its SQLite
  # storage survives a restart; clients reconnect.
  if pid_alive "$RUN_DIR/broker.pid"; then
    warn "the broker listens but does not answer Kafka requests (see $LOG_DIR/broker.log); restarting it"
    stop_pid_file "$RUN_DIR/broker.pid" 10
  else
    die "something listens on $BROKER_HOST:$BROKER_PORT but does not answer Kafka requests, and make up did not start it"
  fi
fi

if ! command -v tansu >/dev/null; then
  log "installing the tansu broker $TANSU_VERSION (a one-time build of about 10-15 minutes)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi

log "starting the broker on $BROKER_HOST:$BROKER_PORT (storage: .local/broker/tansu.db)"
# The sqlite URL is relative to the working directory, so run from the state directory.
(
  cd "$BROKER_DIR"
  nohup tansu broker \
    --storage-engine sqlite://tansu.db \
    --listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
    --advertised-listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
    >>"$LOG_DIR/broker.log" 2>&1 &
  echo $! >"$RUN_DIR/broker.pid"
)
wait_until 60 "broker is answering" broker_answers || die "the broker did not start; see $LOG_DIR/broker.log"
index_storage
