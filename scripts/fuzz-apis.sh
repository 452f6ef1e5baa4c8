#!/usr/bin/env bash
# Fuzzes every service's HTTP API with schemathesis, from the service's own
# /openapi.json: generated requests, valid and invalid, with an admin token
# so they reach past authentication. Every check is on (no 5xx, statuses,
# content types and bodies as documented, invalid data refused, valid data
# accepted; see schemathesis.toml for the one configured expectation).
# Run by `make test`; the services it starts for the purpose it stops again.
#
#   FUZZ_EXAMPLES=50 scripts/fuzz-apis.sh      # more examples per operation
set -euo pipefail
source "$(dirname "$0")/common.sh"

SCHEMATHESIS_VERSION=4.32.5
VENV="${CONTRAIL_FUZZ_VENV:-$HOME/.cache/contrail/fuzz-venv}"
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Debug binaries: `make test` has just built them for the tests.
export PROFILE="${FUZZ_PROFILE:-debug}"
BIN_DIR="$CARGO_TARGET_DIR/$PROFILE"
already_running=()
for entry in "${SERVICES[@]}"; do
  name=${entry%%:*}
  pid_alive "$RUN_DIR/$name.pid" && already_running+=("$name")
done
"$ROOT/scripts/up.sh"
stop_what_we_started() {
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    [[ " ${already_running[*]} " == *" $name "* ]] && continue
    if pid_alive "$RUN_DIR/$name.pid"; then
      kill "$(<"$RUN_DIR/$name.pid")" 2>/dev/null || true
      rm -f "$RUN_DIR/$name.pid"
    fi
  done
}
trap stop_what_we_started EXIT

token=$("$BIN_DIR/contrail-admin" token --admin --hours 1 --dir "$AUTH_DIR")
failed=()
cd "$ROOT" # schemathesis.toml
for entry in "${SERVICES[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  log "schemathesis: $name (http://127.0.0.1:$port/openapi.json)"
  if ! "$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
      --header "Authorization: Bearer $token" \
      --checks all --phases examples,coverage,fuzzing \
      --max-examples "${FUZZ_EXAMPLES:-10}" --workers 1 \
      --wait-for-schema 30 --max-failures 20; then
    failed+=("$name")
  fi
done
((${#failed[@]} == 0)) || die "API fuzzing found problems in: ${failed[*]} (each failure above says how to reproduce it)"
log "API fuzzing: every service passed"
