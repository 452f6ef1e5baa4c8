#!/usr/bin/env bash
# Apache Kafka for the local stack and the tests, from Maven Central jars.
#
#   scripts/kafka-broker.sh install
#       fetches the pinned Kafka (deploy/kafka/pom.xml) into .local/kafka/<version>/libs
#       once, with the machine's mvn
#   scripts/kafka-broker.sh run DATA_DIR PORT CONTROLLER_PORT
#       runs a single-node KRaft broker (combined broker + controller) in the
#       foreground: writes DATA_DIR/server.properties and formats DATA_DIR/log
#       the first time, then execs the JVM, so the caller's pid is the broker's
#       (a `kill -9` of it is a real broker crash). Restarting with the same
#       DATA_DIR keeps topics, messages and committed offsets.
#
# `make up` (scripts/ensure-broker.sh) runs it in the background on port 9092;
# libs/test-support's PrivateBroker runs it on free ports in a temporary directory.
set -euo pipefail
source "$(dirname "$0")/common.sh"

POM="$ROOT/deploy/kafka/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
[[ -n "$KAFKA_VERSION" ]] || die "no <kafka.version> in $POM"
KAFKA_HOME="$LOCAL/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"

# Installs java and mvn from Debian's packages when they are missing (as root only).
ensure_toolchain() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "Kafka needs ${missing[*]}; install them (apt-get install ${missing[*]})"
  log "installing ${missing[*]} from Debian's packages"
  apt_install "${missing[@]}"
}

install_kafka() {
  [[ -f "$KAFKA_HOME/.complete" ]] && return 0
  ensure_toolchain
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into ${KAFKA_LIBS#"$ROOT"/} (once; about 45 MB)"
  rm -rf "$KAFKA_HOME"
  mkdir -p "$KAFKA_LIBS"
  local mvn_log="$LOG_DIR/kafka-install.log"
  if ! mvn --batch-mode --file "$POM" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >"$mvn_log" 2>&1; then
    tail -n 20 "$mvn_log" >&2
    die "could not fetch Kafka $KAFKA_VERSION with mvn; see $mvn_log"
  fi
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "mvn did not fetch kafka_2.13-$KAFKA_VERSION.jar"
  touch "$KAFKA_HOME/.complete"
}

# Sized for a 2-core machine that also runs Postgres and four services: a
# small heap, few threads, and no initial rebalance delay (a consumer that
# restarts gets its partitions back at once).
write_config() {
  local data_dir=$1 port=$2 controller_port=$3
  cat >"$data_dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data_dir/log
num.network.threads=2
num.io.threads=4
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created by the services that own them (libs/messaging/topics.rs).
auto.create.topics.enable=false
# Seven days, the default: long enough to rebuild read models and the lake from *.events.
log.retention.hours=168
PROPERTIES
}

JAVA_CMD=(java
  -Xms256m -Xmx768m
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
  -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$ROOT/deploy/kafka/log4j2.properties"
  -cp "$KAFKA_LIBS/*")

run_broker() {
  local data_dir=$1 port=$2 controller_port=$3
  install_kafka
  mkdir -p "$data_dir"
  data_dir=$(cd "$data_dir" && pwd)
  write_config "$data_dir" "$port" "$controller_port"
  if [[ ! -f "$data_dir/log/meta.properties" ]]; then
    local cluster_id
    cluster_id=$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid)
    "${JAVA_CMD[@]}" -Dlog4j2.level=warn kafka.tools.StorageTool format \
      --cluster-id "$cluster_id" --config "$data_dir/server.properties" --ignore-formatted >/dev/null \
      || die "could not format $data_dir/log"
  fi
  # Every partition keeps its segment and index files open: the tests make
  # a topic set per test, thousands of partitions in one `make test`, and at
  # the usual 20,000 descriptors the broker stops accepting connections
  # ("Too many open files"). Raise the limit as far as we may.
  ulimit -n 262144 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  exec "${JAVA_CMD[@]}" kafka.Kafka "$data_dir/server.properties"
}

case "${1:-}" in
  install) install_kafka ;;
  run)
    [[ $# -eq 4 ]] || die "usage: $0 run DATA_DIR PORT CONTROLLER_PORT"
    run_broker "$2" "$3" "$4"
    ;;
  *) die "usage: $0 install | run DATA_DIR PORT CONTROLLER_PORT" ;;
esac
