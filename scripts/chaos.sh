#!/usr/bin/env bash
# `make chaos` and the CI-sized chaos run: builds the four services and the
# harness, and the previous release's services (scripts/previous-release.sh,
# once per release), then runs tools/chaos with the arguments given (see
# `chaos --help` and docs/chaos.md). The harness starts its own Postgres
# cluster and Kafka broker on free loopback ports; the shared ones on 5432
# and 9092 are never touched. Logs and reports: .local/chaos/<seed>/.
#
#   scripts/chaos.sh --runs 5 --bookings 200        # make chaos
#   scripts/chaos.sh --ci                           # what `make test` runs
#   scripts/chaos.sh --seed 1234 --runs 1 ...       # replay a run
set -euo pipefail
source "$(dirname "$0")/common.sh"

# Debug by default: `make test` has just built the dependencies that way.
CHAOS_PROFILE="${CHAOS_PROFILE:-debug}"
profile_flag=()
[[ "$CHAOS_PROFILE" == release ]] && profile_flag=(--release)

args=("$@")
if [[ "${1:-}" == --ci ]]; then
  # One run, 50 bookings: a real kill -9 of a service and one of the broker,
  # and the previous release of every service beside the current one.
  args=(--runs 1 --bookings 50 --rate 2 --faults kill-service,kill-broker,previous-release --max-minutes 8 "${@:2}")
fi

"$ROOT/scripts/kafka-broker.sh" install
log "building the services and the chaos harness ($CHAOS_PROFILE)"
cargo build --locked --quiet "${profile_flag[@]}" --bins \
  -p chaos -p flight-inventory -p booking -p payment -p notification
previous_bin_dir=$("$ROOT/scripts/previous-release.sh")
log "chaos ${args[*]}"
cd "$ROOT"
exec "$CARGO_TARGET_DIR/$CHAOS_PROFILE/chaos" --previous-bin-dir "$previous_bin_dir" "${args[@]}"
