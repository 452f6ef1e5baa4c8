//! The test process's subscriber: log lines and finished spans kept in memory.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use opentelemetry_sdk::Resource;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// What the subscriber captured, shared by every test of this binary.
pub struct Captured {
    spans: InMemorySpanExporter,
    logs: Arc<Mutex<Vec<u8>>>,
    /// Kept so that spans exported over OTLP (if configured) can be flushed.
    provider: SdkTracerProvider,
}

impl Captured {
    /// Every span finished so far, by any test of this process.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap()
    }

    /// Every log line written so far, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        let bytes = self.logs.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Sends buffered spans to the OTLP endpoint, if one is configured.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber on first use.
pub fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let spans = InMemorySpanExporter::default();
        let mut provider = SdkTracerProvider::builder()
            .with_resource(
                Resource::builder()
                    .with_service_name("contrail-system-test")
                    .build(),
            )
            .with_simple_exporter(spans.clone());
        if let Some(endpoint) = std::env::var("CONTRAIL_TEST_OTLP_ENDPOINT")
            .ok()
            .filter(|endpoint| !endpoint.is_empty())
        {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .unwrap();
            provider = provider.with_batch_exporter(exporter);
        }
        let provider = provider.build();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&logs);
        // The services' own crates at debug (the saga's step lines), the
        // rest as a service logs it.
        let filter = EnvFilter::new("info,saga=debug,sqlx=warn,rdkafka=warn,librdkafka=warn");
        tracing_subscriber::registry()
            .with(filter)
            .with(service_kit::json_log::layer(move || {
                SharedBuffer(Arc::clone(&writer))
            }))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("contrail")))
            .try_init()
            .unwrap();
        Captured {
            spans,
            logs,
            provider,
        }
    })
}

/// A span attribute's value as text.
pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.to_string())
}
