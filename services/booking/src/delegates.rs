//! What booking asks other services synchronously, before a saga starts:
//! flight-inventory for a quote (it alone knows flights and fares) and
//! payment for a card token (so no card number ever reaches booking's
//! tables, outbox or logs). Their refusals become the booking client's
//! problems; their unavailability a 503 the client may retry.

use std::time::Duration;

use anyhow::Context;
use contracts::http::inventory::{Quote, QuoteQuery};
use contracts::http::payment::{CardRequest, CardToken};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_kit::ApiError;
use uuid::Uuid;

/// `[delegates]`: where the other services are, and how booking proves it
/// is booking to them.
#[derive(Debug, Clone, Deserialize)]
pub struct DelegateSettings {
    pub inventory_url: String,
    pub payment_url: String,
    /// Only the operator console asks notification anything (its dead letters).
    pub notification_url: String,
    pub timeout_ms: u64,
    /// A `service`-scope bearer token from the token issuer. In production
    /// it comes from the identity provider's client-credentials grant and
    /// is rotated there; `make up` mints a development one.
    #[serde(default)]
    pub service_token: Option<SecretString>,
    /// Or a file holding it (a mounted secret), read at start.
    #[serde(default)]
    pub service_token_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Delegates {
    client: reqwest::Client,
    inventory_url: String,
    payment_url: String,
    service_token: SecretString,
}

/// The part of a problem+json body booking reads.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    problem_type: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    available: Option<u32>,
}

impl Problem {
    fn is(&self, slug: &str) -> bool {
        self.problem_type.rsplit('/').next() == Some(slug)
    }
}

impl Delegates {
    pub fn new(settings: &DelegateSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .context("build the http client")?;
        // Minted by `contrail-admin token --service booking` in development.
        let service_token = service_kit::settings::secret_from(
            settings.service_token.as_ref(),
            settings.service_token_file.as_deref(),
            "delegates.service_token",
        )?;
        Ok(Self {
            client,
            inventory_url: settings.inventory_url.trim_end_matches('/').to_owned(),
            payment_url: settings.payment_url.trim_end_matches('/').to_owned(),
            service_token,
        })
    }

    /// What `seats` seats on the flight cost now, or why they can't be sold.
    #[tracing::instrument(skip(self))]
    pub async fn quote(&self, flight_id: Uuid, seats: u32) -> Result<Quote, ApiError> {
        let url = format!("{}/flights/{flight_id}/quote", self.inventory_url);
        let response = self
            .send(self.client.get(&url).query(&QuoteQuery { seats }))
            .await
            .map_err(|error| unavailable("flight-inventory", error))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<Quote>()
                .await
                .map_err(|error| unavailable("flight-inventory", error.into()));
        }
        let problem: Problem = response.json().await.unwrap_or_default();
        Err(match status.as_u16() {
            404 => ApiError::not_found("no such flight").with_type("flight-not-found"),
            409 if problem.is("sold-out") => {
                let error = ApiError::conflict(problem.detail).with_type("sold-out");
                match problem.available {
                    Some(available) => error.with_extension("available", available),
                    None => error,
                }
            }
            409 => ApiError::conflict(format!("the flight takes no bookings: {}", problem.detail))
                .with_type("flight-closed"),
            400 | 422 => {
                ApiError::unprocessable(problem.detail).with_extension("field", "passengers")
            }
            _ => unavailable(
                "flight-inventory",
                anyhow::anyhow!("quote answered {status}: {}", problem.detail),
            ),
        })
    }

    /// Exchanges a card for a token payment can charge.
    #[tracing::instrument(skip_all)]
    pub async fn tokenize(&self, card: &CardRequest) -> Result<CardToken, ApiError> {
        let url = format!("{}/cards", self.payment_url);
        let response = self
            .send(self.client.post(&url).json(card))
            .await
            .map_err(|error| unavailable("payment", error))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<CardToken>()
                .await
                .map_err(|error| unavailable("payment", error.into()));
        }
        let problem: Problem = response.json().await.unwrap_or_default();
        Err(match status.as_u16() {
            400 | 422 => {
                let field = problem
                    .field
                    .as_deref()
                    .map_or("payment.card".to_owned(), |field| {
                        format!("payment.card.{field}")
                    });
                let problem_type = if problem.is("unknown-card") {
                    "unknown-card"
                } else if problem.is("invalid-card-number") {
                    "invalid-card-number"
                } else {
                    "invalid-card"
                };
                ApiError::unprocessable(problem.detail)
                    .with_type(problem_type)
                    .with_extension("field", field)
            }
            _ => unavailable(
                "payment",
                anyhow::anyhow!("card tokenization answered {status}: {}", problem.detail),
            ),
        })
    }

    /// Sends as booking (its service token), with the current trace
    /// context, so the trace continues in the other service.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let request = request.bearer_auth(self.service_token.expose_secret());
        let request = service_kit::telemetry::current_trace_headers()
            .into_iter()
            .fold(request, |request, (name, value)| {
                request.header(name, value)
            });
        request.send().await.context("send the request")
    }
}

fn unavailable(service: &'static str, error: anyhow::Error) -> ApiError {
    tracing::warn!(
        service,
        error = format!("{error:#}"),
        "a service booking depends on failed"
    );
    ApiError::unavailable(format!("{service} is unavailable; try again shortly"), 1)
        .with_type("dependency-unavailable")
}
