#!/usr/bin/env bash
# `make observe`: a trace store, Prometheus and Alertmanager beside `make up`,
# all on loopback, on ports of their own, with their data under .local/observe:
#
#   Jaeger v2      http://127.0.0.1:16687  UI and query API; OTLP/HTTP in on 14318, OTLP/gRPC on 14317
#   Prometheus     http://127.0.0.1:19090  scrapes the four services every 5 s with deploy/prometheus/alerts.yml
#   Alertmanager   http://127.0.0.1:19193  receives Prometheus's alerts (deploy/alertmanager/alertmanager.yml)
#
# Jaeger is built once from the Go module proxy (deploy/jaeger/go.mod pins it,
# a few minutes on 2 cores) into .local/bin; Prometheus and Alertmanager are
# Debian's packages (their system services are not started).
#
# The services export their spans over OTLP when started with
# <SERVICE>__TELEMETRY__OTLP_ENDPOINT set: this script writes those settings to
# .local/run/observe.env, which `make up` reads, and restarts services that are
# already running without them.
#
# Usage: scripts/observe.sh [up|down|status]      (`make down` runs `down` too)
# Ports and targets can be moved with CONTRAIL_OBSERVE_* variables (see below).
set -euo pipefail
source "$(dirname "$0")/common.sh"

OBSERVE_DIR="$LOCAL/observe"
OBSERVE_ENV="$RUN_DIR/observe.env"
JAEGER_BIN="$LOCAL/bin/jaeger"
JAEGER_VERSION=v1.75.0 # the Go module's version; its binary is Jaeger v2
JAEGER_UI_PORT=16687
JAEGER_OTLP_HTTP_PORT=14318
PROMETHEUS_PORT="${CONTRAIL_OBSERVE_PROMETHEUS_PORT:-19090}"
ALERTMANAGER_PORT="${CONTRAIL_OBSERVE_ALERTMANAGER_PORT:-19193}"
ALERTMANAGER_CLUSTER_PORT="${CONTRAIL_OBSERVE_ALERTMANAGER_CLUSTER_PORT:-19194}"
# name=host:port of each service to scrape; `make up`'s services by default.
TARGETS="${CONTRAIL_OBSERVE_TARGETS:-$(for entry in "${SERVICES[@]}"; do printf '%s=127.0.0.1:%s,' "${entry%%:*}" "${entry##*:}"; done)}"

ensure_tools() {
  local missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (Debian; their system services stay stopped)"
    apt_install "${missing[@]}"
  fi
  if [[ ! -x "$JAEGER_BIN" ]]; then
    command -v go >/dev/null || die "Go is needed to build Jaeger ($JAEGER_VERSION); install golang"
    log "building Jaeger $JAEGER_VERSION from the Go module proxy (once; a few minutes)"
    mkdir -p "$LOCAL/bin"
    (cd "$ROOT/deploy/jaeger" && go build -o "$JAEGER_BIN" github.com/jaegertracing/jaeger/cmd/jaeger) ||
      die "building Jaeger failed"
  fi
}

# Prometheus's configuration for this machine: the scrape targets are
# loopback ports here, not compose host names, so it is written from
# $TARGETS; the rules are the repository's own.
write_prometheus_config() {
  local config="$OBSERVE_DIR/prometheus.yml" target name address
  {
    printf '# Written by scripts/observe.sh; edit that script, not this file.\n'
    printf 'global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n'
    printf 'rule_files:\n  - %s\n' "$ROOT/deploy/prometheus/alerts.yml"
    printf 'alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ["127.0.0.1:%s"]\n' "$ALERTMANAGER_PORT"
    printf 'scrape_configs:\n  - job_name: contrail\n    static_configs:\n'
    IFS=, read -r -a entries <<<"$TARGETS"
    for target in "${entries[@]}"; do
      [[ -n "$target" ]] || continue
      name=${target%%=*} address=${target#*=}
      printf '      - targets: ["%s"]\n        labels:\n          service: %s\n' "$address" "$name"
    done
  } >"$config"
  promtool check config "$config" >/dev/null || die "the generated $config is invalid"
}

start() { # start NAME LOG COMMAND...: run COMMAND in the background, its pid in NAME.pid
  local name=$1 logfile=$2
  shift 2
  if pid_alive "$RUN_DIR/$name.pid"; then
    log "$name is already running (pid $(<"$RUN_DIR/$name.pid"))"
    return
  fi
  nohup "$@" >>"$logfile" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  log "started $name (pid $!)"
}

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# Does the process in pid file $1 run with OTLP export configured?
exports_traces() {
  local pid
  pid=$(<"$1")
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q '__TELEMETRY__OTLP_ENDPOINT='
}

up() {
  ensure_tools
  mkdir -p "$OBSERVE_DIR/prometheus" "$OBSERVE_DIR/alertmanager"
  write_prometheus_config

  start jaeger "$LOG_DIR/jaeger.log" "$JAEGER_BIN" --config "$ROOT/deploy/jaeger/config.yaml"
  start alertmanager "$LOG_DIR/alertmanager.log" prometheus-alertmanager \
    --config.file="$ROOT/deploy/alertmanager/alertmanager.yml" \
    --storage.path="$OBSERVE_DIR/alertmanager" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address="127.0.0.1:$ALERTMANAGER_CLUSTER_PORT"
  start prometheus "$LOG_DIR/prometheus.log" prometheus \
    --config.file="$OBSERVE_DIR/prometheus.yml" \
    --storage.tsdb.path="$OBSERVE_DIR/prometheus" \
    --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"

  wait_until 60 "Jaeger is ready" answers "http://127.0.0.1:$JAEGER_UI_PORT/api/services" ||
    die "Jaeger did not answer; see $LOG_DIR/jaeger.log"
  wait_until 60 "Alertmanager is ready" answers "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" ||
    die "Alertmanager did not answer; see $LOG_DIR/alertmanager.log"
  wait_until 60 "Prometheus is ready" answers "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" ||
    die "Prometheus did not answer; see $LOG_DIR/prometheus.log"

  {
    printf '# Written by scripts/observe.sh: `make up` starts the services with these.\n'
    for prefix in FLIGHT_INVENTORY PAYMENT NOTIFICATION BOOKING; do
      printf 'export %s__TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:%s\n' "$prefix" "$JAEGER_OTLP_HTTP_PORT"
      printf 'export %s__TELEMETRY__LOG_FORMAT=json\n' "$prefix"
    done
  } >"$OBSERVE_ENV"

  # Services already running without the endpoint export nothing: restart them.
  local stale=0
  for entry in "${SERVICES[@]}"; do
    pid_file="$RUN_DIR/${entry%%:*}.pid"
    if pid_alive "$pid_file" && ! exports_traces "$pid_file"; then
      stale=1
    fi
  done
  if ((stale)); then
    log "restarting the services so that they export traces to Jaeger"
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
      stop_pid_file "$RUN_DIR/${SERVICES[i]%%:*}.pid" 20
    done
    "$ROOT/scripts/up.sh"
  fi

  log "observing"
  printf '    %-13s http://127.0.0.1:%s   (OTLP/HTTP in: http://127.0.0.1:%s)\n' jaeger "$JAEGER_UI_PORT" "$JAEGER_OTLP_HTTP_PORT"
  printf '    %-13s http://127.0.0.1:%s\n' prometheus "$PROMETHEUS_PORT" alertmanager "$ALERTMANAGER_PORT"
  pid_alive "$RUN_DIR/booking.pid" || printf '    the services are not running: `make up` starts them exporting traces\n'
  printf '    check it end to end: scripts/check-observe.sh\n'
}

down() {
  stop_pid_file "$RUN_DIR/prometheus.pid" 15
  stop_pid_file "$RUN_DIR/alertmanager.pid" 15
  stop_pid_file "$RUN_DIR/jaeger.pid" 15
  rm -f "$OBSERVE_ENV"
}

status() {
  for name in jaeger prometheus alertmanager; do
    if pid_alive "$RUN_DIR/$name.pid"; then
      printf '%-13s running (pid %s)\n' "$name" "$(<"$RUN_DIR/$name.pid")"
    else
      printf '%-13s stopped\n' "$name"
    fi
  done
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac
