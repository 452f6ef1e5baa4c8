//! Typed, layered configuration.
//!
//! Layers, later ones winning:
//! 1. the service's built-in defaults (a TOML document compiled into the binary);
//! 2. an optional file named by `<PREFIX>_CONFIG` (for example `BOOKING_CONFIG=/etc/contrail/booking.toml`);
//! 3. environment variables `<PREFIX>__SECTION__KEY`, for example `BOOKING__HTTP__PORT=9000`;
//! 4. explicit overrides (used by tests to point a service at a fresh database).
//!
//! Secrets are [`SecretString`]s: they deserialize normally and print as `[REDACTED]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The environment-variable prefix of a service: `flight-inventory` → `FLIGHT_INVENTORY`.
pub fn env_prefix(service_name: &str) -> String {
    service_name.replace('-', "_").to_ascii_uppercase()
}

/// Loads a service's settings from its defaults, optional file and environment.
pub fn load<T: DeserializeOwned>(service_name: &str, defaults_toml: &str) -> anyhow::Result<T> {
    load_with_overrides(service_name, defaults_toml, &[])
}

/// Like [`load`], with `(dotted.key, value)` overrides applied last.
pub fn load_with_overrides<T: DeserializeOwned>(
    service_name: &str,
    defaults_toml: &str,
    overrides: &[(&str, String)],
) -> anyhow::Result<T> {
    let prefix = env_prefix(service_name);
    let mut builder = Config::builder().add_source(File::from_str(defaults_toml, FileFormat::Toml));
    if let Ok(path) = std::env::var(format!("{prefix}_CONFIG")) {
        builder = builder.add_source(File::with_name(&path).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix(&prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    for (key, value) in overrides {
        builder = builder
            .set_override(*key, typed_override(value))
            .with_context(|| format!("override setting {key}"))?;
    }
    builder
        .build()
        .context("assemble configuration layers")?
        .try_deserialize()
        .with_context(|| format!("read {service_name} settings"))
}

/// An override as the environment layer would read it (`try_parsing`): a
/// number or a boolean when it spells one. The services' own settings are
/// flattened into [`ServiceSettings`], and serde's flattening cannot turn a
/// string into a number the way a plain field can.
fn typed_override(value: &str) -> config::Value {
    if let Ok(integer) = value.parse::<i64>() {
        integer.into()
    } else if let Some(float) = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        .then(|| value.parse::<f64>().ok())
        .flatten()
    {
        float.into()
    } else if let Ok(boolean) = value.parse::<bool>() {
        boolean.into()
    } else {
        value.into()
    }
}

/// Everything a service is configured with: the shared sections every
/// service has, and `domain`, the service's own settings, whose fields sit at
/// the top level of the document next to the shared sections. The broker's
/// `[kafka]` section is one of those: messaging owns its type
/// (`messaging::KafkaSettings`) and each service embeds it, so service-kit
/// knows nothing of Kafka.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings<Domain> {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    /// Whose bearer tokens the service trusts; required, so a service
    /// without a key refuses to start rather than serve unauthenticated.
    pub auth: crate::auth::AuthSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(flatten)]
    pub domain: Domain,
}

/// `settings.kafka` reads the service's own `kafka` section: a service's
/// settings are one document, and the split into shared and own sections is
/// service-kit's business, not something every call site should spell out.
impl<Domain> std::ops::Deref for ServiceSettings<Domain> {
    type Target = Domain;

    fn deref(&self) -> &Domain {
        &self.domain
    }
}

/// Where and how the HTTP server listens.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(default = "default_host")]
    pub host: IpAddr,
    pub port: u16,
    /// A request that takes longer is answered with a 503 problem.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Larger request bodies are refused with 413.
    #[serde(default = "default_body_limit_bytes")]
    pub body_limit_bytes: usize,
    /// Requests beyond this many in flight are shed with 503 and `Retry-After`.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for in-flight requests and workers.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
}

impl HttpSettings {
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

fn default_host() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_body_limit_bytes() -> usize {
    64 * 1024
}
fn default_max_concurrent_requests() -> usize {
    512
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}

/// The service's own database: its URL (a secret: it may carry a password) and pool sizing.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// The schema the service owns; it is the connection's `search_path`.
    pub schema: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default)]
    pub min_connections: u32,
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// How long start-up keeps retrying an unreachable database before giving up.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
}

fn default_max_connections() -> u32 {
    10
}
fn default_acquire_timeout_ms() -> u64 {
    5_000
}
fn default_startup_timeout_ms() -> u64 {
    60_000
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    #[serde(default = "default_log_filter")]
    pub log_filter: String,
    #[serde(default)]
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint (e.g. `http://127.0.0.1:4318`); traces are exported only when set.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Fraction of root traces sampled, 0.0–1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: default_log_filter(),
            log_format: LogFormat::default(),
            otlp_endpoint: None,
            sample_ratio: default_sample_ratio(),
        }
    }
}

fn default_log_filter() -> String {
    "info,sqlx=warn,rdkafka=warn".to_owned()
}
fn default_sample_ratio() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, pretty when it is.
    #[default]
    Auto,
    Json,
    Pretty,
}

/// A secret given in the settings or, for a mounted secret, as a file read
/// once at start (trailing whitespace dropped). `name` is the setting, for
/// the error when neither is there.
pub fn secret_from(
    value: Option<&SecretString>,
    file: Option<&std::path::Path>,
    name: &str,
) -> anyhow::Result<SecretString> {
    match (value, file) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(path)) => Ok(SecretString::from(
            std::fs::read_to_string(path)
                .with_context(|| format!("read {name} from {}", path.display()))?
                .trim_end()
                .to_owned(),
        )),
        (None, None) => anyhow::bail!("{name} (or {name}_file) is required"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const DEFAULTS: &str = r#"
        [http]
        port = 8080
        [database]
        url = "postgres://booking:hunter2@localhost/contrail"
        schema = "booking"
    "#;

    #[derive(Debug, Deserialize)]
    struct Sample {
        http: HttpSettings,
        database: DatabaseSettings,
    }

    #[test]
    fn overrides_reach_a_services_own_flattened_settings_with_their_types() {
        #[derive(Debug, Deserialize)]
        struct Own {
            retries: u32,
            ratio: f64,
            enabled: bool,
            name: String,
        }
        #[derive(Debug, Deserialize)]
        struct WithOwn {
            #[serde(flatten)]
            own: Own,
        }
        let defaults = "retries = 1\nratio = 0.5\nenabled = false\nname = \"a\"\n";
        let overrides = [
            ("retries", "7".to_owned()),
            ("ratio", "0.25".to_owned()),
            ("enabled", "true".to_owned()),
            ("name", "inf".to_owned()),
        ];
        let settings: WithOwn = load_with_overrides("sample-o", defaults, &overrides).unwrap();
        assert_eq!(settings.own.retries, 7);
        assert_eq!(settings.own.ratio, 0.25);
        assert!(settings.own.enabled);
        assert_eq!(settings.own.name, "inf");
    }

    #[test]
    fn env_prefix_is_upper_snake_case() {
        assert_eq!(env_prefix("flight-inventory"), "FLIGHT_INVENTORY");
    }

    #[test]
    fn defaults_fill_what_the_document_leaves_out() {
        let sample: Sample = load_with_overrides("sample-a", DEFAULTS, &[]).unwrap();
        assert_eq!(sample.http.port, 8080);
        assert_eq!(sample.http.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(sample.database.max_connections, 10);
    }

    #[test]
    fn overrides_win_over_defaults() {
        let sample: Sample =
            load_with_overrides("sample-b", DEFAULTS, &[("http.port", "0".to_owned())]).unwrap();
        assert_eq!(sample.http.port, 0);
    }

    #[test]
    fn environment_wins_over_defaults() {
        // A prefix no other test uses, so setting the variable cannot leak into them.
        std::env::set_var("SAMPLE_ENV__HTTP__PORT", "9999");
        let sample: Sample = load_with_overrides("sample-env", DEFAULTS, &[]).unwrap();
        assert_eq!(sample.http.port, 9999);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let sample: Sample = load_with_overrides("sample-c", DEFAULTS, &[]).unwrap();
        let printed = format!("{sample:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(sample.database.url.expose_secret().contains("hunter2"));
    }
}
