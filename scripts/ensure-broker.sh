#!/usr/bin/env bash
# Makes sure a Kafka broker answers on 127.0.0.1:$CONTRAIL_BROKER_PORT. If none
# does, starts Apache Kafka (KRaft, single node) from Maven Central jars, with
# durable logs under .local/kafka/data, and records its pid so `make down`
# stops it. Any Kafka already answering on that port is used as it is.
set -euo pipefail
source "$(dirname "$0")/common.sh"

broker_answers() { python3 "$ROOT/scripts/broker-answers.py" "$BROKER_HOST" "$BROKER_PORT"; }

if broker_answers; then
  exit 0
fi
if port_open "$BROKER_HOST" "$BROKER_PORT"; then
  # A broker still starting listens before it has registered; give it time.
  wait_until 60 "" broker_answers && exit 0
  die "something listens on $BROKER_HOST:$BROKER_PORT but does not answer as a Kafka broker"
fi

"$ROOT/scripts/kafka-broker.sh" install
log "starting Apache Kafka on $BROKER_HOST:$BROKER_PORT (logs: .local/kafka/data/log)"
nohup "$ROOT/scripts/kafka-broker.sh" run "$BROKER_DIR" "$BROKER_PORT" "$BROKER_CONTROLLER_PORT" \
  >>"$LOG_DIR/broker.log" 2>&1 &
echo $! >"$RUN_DIR/broker.pid"
if ! wait_until 90 "Kafka is answering" broker_answers; then
  tail -n 20 "$LOG_DIR/broker.log" >&2 || true
  die "Kafka did not start; see $LOG_DIR/broker.log"
fi
