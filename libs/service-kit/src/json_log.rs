//! JSON log lines that join up.
//!
//! Every line is one JSON object holding the event's own fields and the
//! fields of every span it happened in, flattened (the innermost span wins a
//! name clash, the event's own fields win over any span's), plus the
//! OpenTelemetry `trace_id` and `span_id` of the innermost traced span. So a
//! line logged deep inside a message handler still carries the consumer
//! span's `message_id` and `correlation_id`, and one inside a request
//! handler the request span's `request_id`: `jq 'select(.correlation_id ==
//! "…")'` finds everything about one booking without knowing which span
//! logged it.
//!
//! tracing-subscriber's own JSON format prints only the current span's
//! fields (or a list of spans to be searched), which is why this layer
//! exists.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_opentelemetry::OtelData;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Writes every event as one JSON line to `make_writer`; see the module docs.
pub fn layer<W>(make_writer: W) -> JsonLogLayer<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    JsonLogLayer { make_writer }
}

/// The layer [`layer`] builds.
#[derive(Debug)]
pub struct JsonLogLayer<W> {
    make_writer: W,
}

/// A span's fields as recorded so far, kept in the span's extensions.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) => values.record(&mut JsonVisitor(&mut fields.0)),
            None => {
                let mut fields = SpanFields::default();
                values.record(&mut JsonVisitor(&mut fields.0));
                extensions.insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".to_owned(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert(
            "level".to_owned(),
            Value::String(metadata.level().to_string()),
        );
        line.insert(
            "target".to_owned(),
            Value::String(metadata.target().to_owned()),
        );

        let mut trace_ids = None;
        if let Some(scope) = ctx.event_scope(event) {
            let spans: Vec<_> = scope.collect();
            if let Some(innermost) = spans.first() {
                line.insert(
                    "span".to_owned(),
                    Value::String(innermost.name().to_owned()),
                );
            }
            // Root first, so inner spans overwrite outer ones on a clash.
            for span in spans.iter().rev() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<SpanFields>() {
                    for (name, value) in &fields.0 {
                        line.insert(name.clone(), value.clone());
                    }
                }
            }
            trace_ids = spans.iter().find_map(|span| {
                let extensions = span.extensions();
                let otel = extensions.get::<OtelData>()?;
                let trace_id = otel.trace_id()?;
                let span_id = otel.span_id()?;
                (trace_id != opentelemetry::TraceId::INVALID).then_some((trace_id, span_id))
            });
        }
        event.record(&mut JsonVisitor(&mut line));
        if let Some((trace_id, span_id)) = trace_ids {
            line.insert("trace_id".to_owned(), Value::String(trace_id.to_string()));
            line.insert("span_id".to_owned(), Value::String(span_id.to_string()));
        }

        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        // A log line that cannot be written has nowhere to be reported.
        let _ = self.make_writer.make_writer_for(metadata).write_all(&bytes);
    }
}

/// Records fields as JSON values: numbers and booleans as themselves,
/// everything else (`%display`, `?debug`, errors) as its text.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.insert(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_line_carries_the_fields_of_every_span_it_happened_in() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("http_request", request_id = "req-1");
            let _request = request.enter();
            let handler = tracing::info_span!(
                "create",
                correlation_id = tracing::field::Empty,
                request_id = "inner"
            );
            let _handler = handler.enter();
            handler.record("correlation_id", "booking-7");
            tracing::info!(seats = 2, "seats held");
        });

        let lines = lines(&captured);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["message"], "seats held");
        assert_eq!(line["seats"], 2);
        assert_eq!(line["correlation_id"], "booking-7");
        assert_eq!(
            line["request_id"], "inner",
            "the innermost span wins a clash"
        );
        assert_eq!(line["span"], "create");
        assert_eq!(line["level"], "INFO");
    }

    #[test]
    fn a_line_inside_a_traced_span_carries_its_trace_and_span_ids() {
        use opentelemetry::trace::TracerProvider as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(layer(move || writer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("consume", message_id = "m-1");
            let _entered = span.enter();
            tracing::warn!("inside");
        });

        let lines = lines(&captured);
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(lines[1]["span_id"].as_str().unwrap().len(), 16);
        assert_eq!(lines[1]["message_id"], "m-1");
    }
}
