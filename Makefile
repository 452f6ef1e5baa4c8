# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help up down status demo test fmt lint check load chaos observe

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

up: ## Start Postgres (if stopped), the broker and the four services; harmless to repeat
	@scripts/up.sh

observe: ## Jaeger, Prometheus and Alertmanager beside `make up` (own ports; see docs/observability.md)
	@scripts/observe.sh up

down: ## Stop exactly what `make up` and `make observe` started
	@scripts/down.sh

status: ## Show what is running and whether it is ready
	@scripts/status.sh

demo: ## `make up`, then a scripted walk through the API
	@scripts/demo.sh

test: ## Everything CI runs: fmt, clippy, all tests against real Postgres and broker, deploy checks
	@scripts/test.sh

check: ## Check the cross-service invariants against the running system (`make up` first)
	cargo run --release -p invariant-checker

load: ## Latency at 50, 150 and 300 bookings/s, the highest sustained rate, then a read mix with the cache on and off, beside pgbench baselines; then the invariants
	cargo run --release -p loadgen -- --fixed-rates 50,150,300 --seconds 20 --find-max --steps 40,60,80,100,120,160,200,300 --step-seconds 15

chaos: ## 5 runs x 200 bookings on a private stack: kill -9, broker kill, Postgres restart, rebalance, duplicates, previous release beside the current; invariants after each run
	@scripts/chaos.sh --runs 5 --bookings 200

fmt: ## Format the code
	cargo fmt --all

lint: ## Clippy with warnings as errors
	cargo clippy --workspace --all-targets -- -D warnings
