#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:$CONTRAIL_REDIS_PORT (6379). If none
# does, installs Debian's redis-server when missing and starts a private
# instance — not the system service — bound to loopback, with its config and
# data under .local/redis, and records its pid so `make down` stops exactly
# that. Any Redis already answering on that port is used as it is.
#
# The read cache is disposable: no persistence (no RDB snapshots, no AOF), and
# a memory cap with LRU eviction so it never grows without bound.
set -euo pipefail
source "$(dirname "$0")/common.sh"

redis_answers() { [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  if port_open "$REDIS_HOST" "$REDIS_PORT"; then
    # Something listens already; without redis-cli, trust it to be Redis.
    exit 0
  fi
  log "installing Debian's redis-server"
  apt_install redis-server
  # The package starts the system service on some machines; the stack uses its own instance.
  if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
  fi
fi

if redis_answers; then
  exit 0
fi
if port_open "$REDIS_HOST" "$REDIS_PORT"; then
  wait_until 10 "" redis_answers && exit 0
  die "something listens on $REDIS_HOST:$REDIS_PORT but does not answer as Redis"
fi

mkdir -p "$REDIS_DIR"
cat >"$REDIS_DIR/redis.conf" <<CONF
# Written by scripts/ensure-redis.sh: the local stack's read cache.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
dir $REDIS_DIR
daemonize no
save ""
appendonly no
maxmemory 256mb
maxmemory-policy allkeys-lru
logfile $LOG_DIR/redis.log
CONF
log "starting Redis on $REDIS_HOST:$REDIS_PORT (config: .local/redis/redis.conf)"
nohup redis-server "$REDIS_DIR/redis.conf" >>"$LOG_DIR/redis.log" 2>&1 &
echo $! >"$RUN_DIR/redis.pid"
if ! wait_until 20 "Redis is answering" redis_answers; then
  tail -n 20 "$LOG_DIR/redis.log" >&2 || true
  die "Redis did not start; see $LOG_DIR/redis.log"
fi
