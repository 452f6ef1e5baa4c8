//! W3C trace context across Kafka: written into message headers on the way
//! out, continued from them on the way in, so one trace spans a whole saga.
//! The mechanism itself is [`service_kit::trace_context`]; these are its
//! header-map forms for the outbox and the consumer.

use std::collections::HashMap;

use service_kit::trace_context::TraceContext;

/// The current span's trace context as headers (`traceparent`, `tracestate`).
pub fn current_headers() -> HashMap<String, String> {
    TraceContext::current().headers().clone()
}

/// Makes `span` a child of the trace whose context `headers` carry, if any.
pub fn continue_trace(span: &tracing::Span, headers: &HashMap<String, String>) {
    TraceContext::from_headers(headers).make_parent_of(span);
}
