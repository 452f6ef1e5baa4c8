#!/usr/bin/env bash
# Makes sure a Kafka-protocol broker answers on 127.0.0.1:$CONTRAIL_BROKER_PORT.
# If none does, installs tansu (a Kafka-compatible broker from crates.io) when
# missing and starts it with durable SQLite storage under .local/broker/.
# The services only speak the Kafka protocol; any Kafka broker on that port works.
set -euo pipefail
source "$(dirname "$0")/common.sh"

broker_up() { port_open "$BROKER_HOST" "$BROKER_PORT"; }

if broker_up; then
  exit 0
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
wait_until 60 "broker is listening" broker_up || die "the broker did not start; see $LOG_DIR/broker.log"
