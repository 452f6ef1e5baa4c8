# Shared by the stack scripts: paths, the service table, and small helpers.
# Sourced, never run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/logs"
AUTH_DIR="$LOCAL/auth"
BROKER_DIR="$LOCAL/kafka/data"
mkdir -p "$RUN_DIR" "$LOG_DIR"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${PROFILE:-release}"
BIN_DIR="$CARGO_TARGET_DIR/$PROFILE"

PG_URL="${CONTRAIL_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BROKER_HOST=127.0.0.1
BROKER_PORT="${CONTRAIL_BROKER_PORT:-9092}"
BROKER_CONTROLLER_PORT="${CONTRAIL_BROKER_CONTROLLER_PORT:-9093}"
REDIS_HOST=127.0.0.1
REDIS_PORT="${CONTRAIL_REDIS_PORT:-6379}"
REDIS_DIR="$LOCAL/redis"

# The data lake (tools/lake): its directory and its writer's pid file.
LAKE_DIR="${CONTRAIL_LAKE_ROOT:-$LOCAL/lake}"
LAKE_PID_FILE="$RUN_DIR/lake-writer.pid"

# name:port, in start order (flight-inventory first: booking asks it for quotes).
SERVICES=(flight-inventory:8081 payment:8082 notification:8083 booking:8080)

log() { printf '\033[1m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[33mwarn:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Is the process recorded in pid file $1 alive?
pid_alive() {
  local pid_file=$1
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Installs Debian packages; refreshes the package lists once per run.
apt_install() {
  ((EUID == 0)) || die "missing packages: $*; install them with: sudo apt-get install $*"
  if [[ -z "${CONTRAIL_APT_UPDATED:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    export CONTRAIL_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
  [[ -n "$what" ]] && log "$what"
  return 0
}

# Stops the process in pid file $1 with SIGTERM, then SIGKILL after $2 seconds.
stop_pid_file() {
  local pid_file=$1 grace=${2:-15} name
  name=$(basename "$pid_file" .pid)
  if ! pid_alive "$pid_file"; then
    rm -f "$pid_file"
    return 0
  fi
  local pid
  pid=$(<"$pid_file")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      warn "$name did not stop within ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  log "stopped $name (pid $pid)"
}
