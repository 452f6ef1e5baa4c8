#!/usr/bin/env bash
# `make status`: what is running, where, and whether it is ready.
set -euo pipefail
source "$(dirname "$0")/common.sh"

row() { printf '%-17s %-9s %-8s %s\n' "$@"; }
row COMPONENT STATE PID WHERE
if pg_isready -q -d "$PG_URL" 2>/dev/null; then state=up; else state=down; fi
row postgres "$state" - "${PG_URL%%\?*}"
pid=-; [[ -f "$RUN_DIR/broker.pid" ]] && pid=$(<"$RUN_DIR/broker.pid")
if ! port_open "$BROKER_HOST" "$BROKER_PORT"; then
  state=down
elif python3 "$ROOT/scripts/broker-answers.py" "$BROKER_HOST" "$BROKER_PORT"; then
  state=up
else
  state=broken # listens, answers nothing: `make up` restarts it
fi
row broker "$state" "$pid" "$BROKER_HOST:$BROKER_PORT"
pid=-; [[ -f "$RUN_DIR/redis.pid" ]] && pid=$(<"$RUN_DIR/redis.pid")
if [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
  state=up
elif port_open "$REDIS_HOST" "$REDIS_PORT"; then
  state=unknown # listens; no redis-cli to ask it
else
  state=down # the read cache: the services answer from Postgres without it
fi
row redis "$state" "$pid" "$REDIS_HOST:$REDIS_PORT"
for entry in "${SERVICES[@]}"; do
  name=${entry%%:*} port=${entry##*:} pid=-
  pid_file="$RUN_DIR/$name.pid"
  if pid_alive "$pid_file"; then
    pid=$(<"$pid_file")
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/health/ready"; then state=ready; else state=running; fi
  else
    state=stopped
  fi
  row "$name" "$state" "$pid" "http://127.0.0.1:$port"
done
pid=-; state=stopped
if pid_alive "$LAKE_PID_FILE"; then pid=$(<"$LAKE_PID_FILE"); state=running; fi
row lake-writer "$state" "$pid" "$LAKE_DIR"
