//! W3C trace context (`traceparent`, `tracestate`) as data: what travels in
//! HTTP and Kafka headers, and what a long-lived piece of work (a saga) keeps
//! in its row so that whatever later acts on it — a timer, an operator —
//! continues the same trace instead of starting a new one.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A propagated trace context: the propagator's header pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceContext(HashMap<String, String>);

impl TraceContext {
    /// The current span's context; empty outside a trace.
    pub fn current() -> Self {
        Self::of(&tracing::Span::current())
    }

    /// `span`'s context; empty if it is not traced.
    pub fn of(span: &tracing::Span) -> Self {
        let context = span.context();
        let mut pairs = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MapInjector(&mut pairs));
        });
        Self(pairs)
    }

    /// The trace context among `headers` (which may hold other headers too).
    pub fn from_headers(headers: &HashMap<String, String>) -> Self {
        let mut pairs = HashMap::new();
        let parent = extract(headers);
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&parent, &mut MapInjector(&mut pairs));
        });
        Self(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The header pairs, to be sent along with a message or a request.
    pub fn headers(&self) -> &HashMap<String, String> {
        &self.0
    }

    /// The W3C trace id this context belongs to, if it carries one.
    pub fn trace_id(&self) -> Option<String> {
        let context = extract(&self.0);
        let span_context = context.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| span_context.trace_id().to_string())
    }

    /// Makes `span` a child of this context; a no-op if it is empty.
    pub fn make_parent_of(&self, span: &tracing::Span) {
        if self.is_empty() {
            return;
        }
        // Fails only if `span` is disabled or already started: then there is
        // nothing to attach.
        let _ = span.set_parent(extract(&self.0));
    }

    /// Adds a link from `span` to this context (a span that acts on work
    /// belonging to another trace); a no-op if it is empty.
    pub fn link_from(&self, span: &tracing::Span) {
        let context = extract(&self.0);
        let span_context = context.span().span_context().clone();
        if span_context.is_valid() {
            span.add_link(span_context);
        }
    }
}

fn extract(headers: &HashMap<String, String>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MapExtractor(headers))
    })
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_span_parented_to_a_kept_context_joins_its_trace() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let started = tracing::info_span!("start");
            let kept = started.in_scope(TraceContext::current);
            let json = serde_json::to_string(&kept).unwrap();
            let restored: TraceContext = serde_json::from_str(&json).unwrap();

            let later = tracing::info_span!(parent: None, "timer");
            restored.make_parent_of(&later);

            assert!(restored.headers().contains_key("traceparent"));
            assert_eq!(TraceContext::of(&later).trace_id(), kept.trace_id());
            assert!(kept.trace_id().is_some());
        });
    }

    #[test]
    fn headers_without_a_trace_make_an_empty_context() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let headers = HashMap::from([("message_type".to_owned(), "x.Y.v1".to_owned())]);
        let context = TraceContext::from_headers(&headers);
        assert!(context.is_empty());
        assert_eq!(context.trace_id(), None);
    }
}
