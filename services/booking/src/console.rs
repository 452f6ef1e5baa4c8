//! The operator console: one web page, served by booking, for the people
//! who run the system — sagas by status, age, flight and customer; a saga's
//! timeline; every service's dead letters; retry, compensate, replay and
//! discard, each confirmed before it is sent.
//!
//! The page carries no data and needs no build step: plain HTML, CSS and
//! JavaScript modules compiled into the binary. Every data call it makes is
//! an admin-scoped API call with the bearer token the operator pastes in
//! (kept in the tab's `sessionStorage`), so authorization stays where it is.
//! The assets are therefore open routes, like `/openapi.json`, and they are
//! served with a strict Content-Security-Policy: scripts and styles from this
//! origin only, and no framing, so nothing injected into the page can run or
//! send the token elsewhere.

use axum::http::header::{self, HeaderName};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use service_kit::{ApiError, Path, Routes};

/// `[console]`: what the page links to.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsoleSettings {
    /// A trace UI's address for one trace, with `{trace_id}` where the W3C
    /// trace id goes, e.g. `http://127.0.0.1:16686/trace/{trace_id}`
    /// (Jaeger). Without it, a saga's timeline shows its trace id unlinked.
    #[serde(default)]
    pub trace_url: Option<String>,
}

/// A checked `console.trace_url`.
#[derive(Debug, Clone)]
pub struct TraceUrlTemplate(String);

impl TraceUrlTemplate {
    const PLACEHOLDER: &'static str = "{trace_id}";

    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let template = template.trim();
        anyhow::ensure!(
            template.starts_with("http://") || template.starts_with("https://"),
            "console.trace_url must be an http(s) address, got {template:?}"
        );
        anyhow::ensure!(
            template.contains(Self::PLACEHOLDER),
            "console.trace_url must contain {} where the trace id goes",
            Self::PLACEHOLDER
        );
        Ok(Self(template.to_owned()))
    }

    /// The address of one trace.
    pub fn url_for(&self, trace_id: &TraceId) -> String {
        self.0.replace(Self::PLACEHOLDER, trace_id.as_str())
    }
}

impl ConsoleSettings {
    pub fn trace_url(&self) -> anyhow::Result<Option<TraceUrlTemplate>> {
        self.trace_url
            .as_deref()
            .filter(|template| !template.trim().is_empty())
            .map(TraceUrlTemplate::parse)
            .transpose()
    }
}

/// A W3C trace id: 32 lowercase hex digits, not all zero.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    /// The trace id of a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`).
    pub fn from_traceparent(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        };
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace_id, 32)
            && trace_id.bytes().any(|byte| byte != b'0')
            && hex(parent_id, 16)
            && hex(flags, 2);
        valid.then(|| Self(trace_id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../console/index.html"),
};

/// What `/console/{asset}` serves; anything else is a 404 problem.
const ASSETS: [Asset; 3] = [
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../console/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/console.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/api.js"),
    },
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /console` and `GET /console/{asset}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Routes<S> {
    Routes::new()
        .get("/console", page)
        .get("/console/{asset}", asset)
}

async fn page() -> Response {
    serve(&INDEX)
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(serve)
        .ok_or_else(|| {
            ApiError::not_found(format!("the console has no file {name:?}"))
                .with_type("console-asset-not-found")
        })
}

fn serve(asset: &Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            // The page is part of the binary: a new release brings a new one.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_id_is_read_from_a_valid_traceparent_only() {
        let id =
            TraceId::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            id.map(|id| id.as_str().to_owned()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for invalid in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(TraceId::from_traceparent(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn the_trace_url_template_needs_an_http_address_and_the_placeholder() {
        let template = TraceUrlTemplate::parse("http://127.0.0.1:16686/trace/{trace_id}").unwrap();
        let id =
            TraceId::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .unwrap();
        assert_eq!(
            template.url_for(&id),
            "http://127.0.0.1:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(TraceUrlTemplate::parse("http://127.0.0.1:16686/search").is_err());
        assert!(TraceUrlTemplate::parse("javascript:alert(1)//{trace_id}").is_err());
        let unset = ConsoleSettings {
            trace_url: Some("  ".to_owned()),
        };
        assert!(unset.trace_url().unwrap().is_none());
    }

    #[test]
    fn every_asset_the_page_loads_is_served() {
        for reference in ["console/console.css", "console/console.js"] {
            assert!(
                INDEX.body.contains(reference),
                "index.html loads {reference}"
            );
        }
        for asset in &ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
        }
        let console = ASSETS
            .iter()
            .find(|asset| asset.name == "console.js")
            .unwrap();
        assert!(console.body.contains("from \"./api.js\""));
    }
}
