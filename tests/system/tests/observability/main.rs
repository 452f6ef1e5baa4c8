//! What an operator sees of one booking: its trace and its log lines.
//!
//! The four services run in this process (as in `tests/api`) under one
//! tracing subscriber built from the same parts a service uses: the JSON log
//! layer ([`service_kit::json_log`]) writing into memory, and the
//! OpenTelemetry layer exporting spans to an in-memory exporter. A test then
//! reads a booking's spans and lines back.
//!
//! With `CONTRAIL_TEST_OTLP_ENDPOINT` set (e.g. `http://127.0.0.1:14318`,
//! what `make observe` serves), the spans also go to that OTLP/HTTP
//! endpoint, so `scripts/check-trace.sh` can find the booking's trace in a
//! real trace store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

// The whole-system harness of `tests/api`; this binary uses only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

mod logs;
mod telemetry;
mod traces;
