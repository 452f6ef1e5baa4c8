#!/usr/bin/env bash
# `make test`: everything CI runs. Formatting, lints, then the whole test
# suite (unit, integration and tests/system) against the real Postgres and
# broker, which are started if needed, then the static checks of the
# deployment files.
set -euo pipefail
source "$(dirname "$0")/common.sh"

"$ROOT/scripts/ensure-postgres.sh"
"$ROOT/scripts/ensure-broker.sh"
"$ROOT/scripts/ensure-redis.sh"
"$ROOT/scripts/ensure-browser.sh"

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

log "dropping the previous run's test databases"
cargo run --locked --quiet -p contrail-admin -- --admin-url "$PG_URL" drop-test-databases
log "deleting the previous run's test topics"
cargo run --locked --quiet -p contrail-admin -- --admin-url "$PG_URL" drop-test-topics --brokers "$BROKER_HOST:$BROKER_PORT"

export CONTRAIL_TEST_ADMIN_URL="$PG_URL"
export CONTRAIL_TEST_BROKERS="$BROKER_HOST:$BROKER_PORT"
export CONTRAIL_TEST_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
log "running the test suite"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
  cargo test --locked --workspace --doc --quiet
else
  cargo test --locked --workspace --no-fail-fast
fi

log "chaos, CI-sized: a real kill -9 of a service and of the broker mid-traffic, then the invariants"
"$ROOT/scripts/chaos.sh" --ci

log "fuzzing every service's API from its OpenAPI document (schemathesis)"
"$ROOT/scripts/fuzz-apis.sh"

if [[ -x "$ROOT/scripts/validate-deploy.sh" ]]; then
  log "validating the deployment files"
  "$ROOT/scripts/validate-deploy.sh"
fi
