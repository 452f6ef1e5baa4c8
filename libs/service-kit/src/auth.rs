//! Bearer tokens: who is calling, and what they may do. Verified once, here.
//!
//! A token is a JWT signed with Ed25519 (`EdDSA`) by the deployment's token
//! issuer. Every service holds only the issuer's public key
//! ([`AuthSettings`]); the checks are the signature, the algorithm (EdDSA
//! only: no `none`, no HMAC confusion), `iss`, `aud`, `exp` and `nbf` with a
//! small leeway for clock skew.
//!
//! A token carries one [`Scope`]: a **customer** acts for itself (`sub` is
//! its customer id), an **admin** operates the system, a **service** calls
//! another service on the system's behalf. Handlers take a [`Caller`]
//! extractor and ask it what they need ([`Caller::may_act_for`],
//! [`Caller::require_admin`]); a missing or invalid token is 401 with
//! `WWW-Authenticate: Bearer`, a valid token without the scope is 403 — and a
//! customer asking for another customer's resource gets the handler's 404,
//! so the answer is no oracle for what exists.
//!
//! [`TokenIssuer`] signs tokens: for development (`contrail-admin token`)
//! and tests, never inside a service.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::problem::{ApiError, ErrorCode};

/// `[auth]`: whose tokens this service trusts.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The issuer every token must name (`iss`).
    pub issuer: String,
    /// The audience every token must name (`aud`): this deployment.
    pub audience: String,
    /// The issuer's Ed25519 public key, PEM (SPKI); or `public_key_file`.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Or the issuer's key set as a JWKS document (`{"keys": [...]}`, Ed25519
    /// `OKP` keys), as identity providers publish it: a token is checked
    /// against the key its `kid` names, so the issuer can rotate keys by
    /// publishing the next one before it signs with it.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Tolerated clock skew for `exp` and `nbf`.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
}

fn default_leeway_secs() -> u64 {
    30
}

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Acts for the customer named in `sub`, and no one else.
    Customer,
    /// Operates the system: flights, sagas, dead letters, miles credits.
    Admin,
    /// Another service of the system (booking asking for a quote).
    Service,
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub scope: Scope,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Who is calling, as their verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Customer { customer_id: String },
    Admin { subject: String },
    Service { service: String },
}

impl Caller {
    /// Whether the caller may act for `customer_id`: the customer itself,
    /// an admin, or a service of the system.
    pub fn may_act_for(&self, customer_id: &str) -> bool {
        match self {
            Caller::Customer { customer_id: own } => own == customer_id,
            Caller::Admin { .. } | Caller::Service { .. } => true,
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin { .. } => Ok(()),
            _ => Err(forbidden("this operation needs an admin token")),
        }
    }

    /// 403 unless the caller is a service of the system or an admin.
    pub fn require_service(&self) -> Result<(), ApiError> {
        match self {
            Caller::Service { .. } | Caller::Admin { .. } => Ok(()),
            Caller::Customer { .. } => {
                Err(forbidden("this operation is for the system's services"))
            }
        }
    }

    /// 403 unless the caller may act for `customer_id`. For a resource that
    /// belongs to another customer, answer 404 instead (see the module doc).
    pub fn require_acting_for(&self, customer_id: &str) -> Result<(), ApiError> {
        if self.may_act_for(customer_id) {
            Ok(())
        } else {
            Err(forbidden("a customer token acts only for its own customer"))
        }
    }

    /// The customer this caller is, if a customer.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Caller::Customer { customer_id } => Some(customer_id),
            _ => None,
        }
    }
}

fn forbidden(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, detail).with_type("forbidden")
}

/// Why a token was not accepted; said to the client in general terms only.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the bearer token has expired")]
    Expired,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        let challenge = match &error {
            TokenError::Missing => "Bearer realm=\"contrail\"".to_owned(),
            TokenError::Invalid(_) | TokenError::Expired => format!(
                "Bearer realm=\"contrail\", error=\"invalid_token\", error_description=\"{error}\""
            ),
        };
        if let TokenError::Invalid(source) = &error {
            tracing::debug!(error = %source, "bearer token refused");
        }
        ApiError::new(ErrorCode::Unauthorized, error.to_string())
            .with_type("unauthorized")
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }
}

/// Verifies tokens against the issuer's public key. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    /// The trusted keys, by `kid` where the key set names them.
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let keys = match (
            &settings.public_key_pem,
            &settings.public_key_file,
            &settings.jwks_file,
        ) {
            (Some(pem), _, _) => vec![(None, pem_key(pem)?)],
            (None, Some(path), _) => vec![(
                None,
                pem_key(
                    &std::fs::read_to_string(path)
                        .with_context(|| format!("read the token public key {}", path.display()))?,
                )?,
            )],
            (None, None, Some(path)) => jwks_keys(path)?,
            (None, None, None) => anyhow::bail!(
                "no token public key configured: set auth.public_key_file, \
                 auth.public_key_pem or auth.jwks_file"
            ),
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        Ok(Self {
            inner: Arc::new(VerifierInner { keys, validation }),
        })
    }

    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Invalid)?;
        // The key the token names, or, without a `kid`, each trusted key.
        let candidates = self.inner.keys.iter().filter(|(kid, _)| {
            header.kid.is_none() || kid.is_none() || kid.as_deref() == header.kid.as_deref()
        });
        let mut outcome = Err(TokenError::Invalid(jsonwebtoken::errors::Error::from(
            jsonwebtoken::errors::ErrorKind::InvalidSignature,
        )));
        for (_, key) in candidates {
            outcome = jsonwebtoken::decode::<Claims>(token, key, &self.inner.validation).map_err(
                |error| match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(error),
                },
            );
            if outcome.is_ok() {
                break;
            }
        }
        let claims = outcome?.claims;
        Ok(match claims.scope {
            Scope::Customer => Caller::Customer {
                customer_id: claims.sub,
            },
            Scope::Admin => Caller::Admin {
                subject: claims.sub,
            },
            Scope::Service => Caller::Service {
                service: claims.sub,
            },
        })
    }

    /// The caller a request's `Authorization: Bearer …` header names.
    pub fn caller_of(&self, parts: &Parts) -> Result<Caller, TokenError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(TokenError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(TokenError::Missing)?;
        self.verify(token)
    }
}

fn pem_key(pem: &str) -> anyhow::Result<DecodingKey> {
    DecodingKey::from_ed_pem(pem.as_bytes())
        .context("read the token public key (an Ed25519 public key in PEM)")
}

fn jwks_keys(path: &std::path::Path) -> anyhow::Result<Vec<(Option<String>, DecodingKey)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the token key set {}", path.display()))?;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JWKS document", path.display()))?;
    let keys = set
        .keys
        .iter()
        .map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).context("read a key of the key set")?;
            Ok((jwk.common.key_id.clone(), key))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!keys.is_empty(), "{} holds no keys", path.display());
    Ok(keys)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<TokenVerifier>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "no token verifier on the request: the service was built without one"
                ))
            })?;
        Ok(verifier.caller_of(parts)?)
    }
}

/// A caller with the admin scope, as an extractor: a handler that takes it
/// serves admins only; anyone else is refused with 403 (401 without a valid
/// token) before the handler runs.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

/// Signs tokens with the issuer's private key: for development tools and
/// tests. A service never holds this key.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// From an Ed25519 private key in PKCS#8 PEM.
    pub fn from_pem(private_key_pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let key = EncodingKey::from_ed_pem(private_key_pem.as_bytes())
            .context("read the token signing key (an Ed25519 private key in PKCS#8 PEM)")?;
        Ok(Self {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for `subject` with `scope`, valid for `ttl` from now.
    pub fn issue(&self, scope: Scope, subject: &str, ttl: TimeDelta) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_owned(),
            scope,
            iat: now,
            nbf: now,
            exp: now + ttl.num_seconds(),
        })
    }

    /// Signs exactly `claims` (tests use it for expired or misaddressed tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.key)
            .context("sign the token")
    }
}

/// The development token issuer `make up` creates (`contrail-admin keygen`)
/// in `.local/auth/`: what local tools sign their tokens with. Never used
/// by a service, and never in production, where the identity provider
/// issues tokens.
pub mod development {
    use std::path::Path;

    use anyhow::Context;
    use chrono::TimeDelta;

    use super::{Scope, TokenIssuer};

    pub const ISSUER: &str = "contrail-dev";
    pub const AUDIENCE: &str = "contrail";
    pub const PRIVATE_KEY: &str = "issuer.key.pem";
    pub const PUBLIC_KEY: &str = "issuer.pub.pem";
    /// Where `make up` keeps it, relative to the repository.
    pub const DIR: &str = ".local/auth";

    /// The issuer whose key is in `dir`.
    pub fn issuer(dir: &Path) -> anyhow::Result<TokenIssuer> {
        let path = dir.join(PRIVATE_KEY);
        let private = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "read {} (`make up` or `contrail-admin keygen` creates it)",
                path.display()
            )
        })?;
        TokenIssuer::from_pem(&private, ISSUER, AUDIENCE)
    }

    /// Creates the issuer's key pair in `dir` unless one is there: the
    /// private key readable by its owner only.
    pub fn keygen(dir: &Path) -> anyhow::Result<()> {
        let private_path = dir.join(PRIVATE_KEY);
        if private_path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (private, public) = super::generate_key_pair()?;
        write_private(&private_path, &private)?;
        std::fs::write(dir.join(PUBLIC_KEY), public)
            .with_context(|| format!("write {}", dir.join(PUBLIC_KEY).display()))
    }

    /// Everything a development stack needs in `dir`: the issuer (kept),
    /// booking's service token (fresh, `booking.token`) and its
    /// request-fingerprint key (kept, `fingerprint.key`).
    pub fn prepare(dir: &Path) -> anyhow::Result<()> {
        keygen(dir)?;
        let token = issuer(dir)?.issue(Scope::Service, "booking", TimeDelta::days(365))?;
        // Replaced whole: a reader never sees half a token.
        let fresh = dir.join("booking.token.new");
        std::fs::write(&fresh, format!("{token}\n"))
            .with_context(|| format!("write {}", fresh.display()))?;
        std::fs::rename(&fresh, dir.join(SERVICE_TOKEN))
            .with_context(|| format!("write {}", dir.join(SERVICE_TOKEN).display()))?;
        let key_path = dir.join(FINGERPRINT_KEY);
        if !key_path.exists() {
            let mut key = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
            let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
            write_private(&key_path, &format!("{hex}\n"))?;
        }
        Ok(())
    }

    /// booking's service token, as [`prepare`] writes it.
    pub const SERVICE_TOKEN: &str = "booking.token";
    /// booking's request-fingerprint key, as [`prepare`] writes it.
    pub const FINGERPRINT_KEY: &str = "fingerprint.key";

    fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("create {}", path.display()))?;
        file.write_all(contents.as_bytes())
            .with_context(|| format!("write {}", path.display()))
    }

    /// `CONTRAIL_TOKEN` if set, else an admin token from the development
    /// issuer in `dir`, valid for `hours`: for load, chaos and audit tools.
    pub fn admin_token(dir: &Path, hours: i64) -> anyhow::Result<String> {
        if let Ok(token) = std::env::var("CONTRAIL_TOKEN") {
            return Ok(token);
        }
        issuer(dir)?.issue(Scope::Admin, "local-tools", TimeDelta::hours(hours))
    }
}

/// A fresh Ed25519 key pair as `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_key_pair() -> anyhow::Result<(String, String)> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let private = signing
        .to_pkcs8_pem(LineEnding::LF)
        .context("encode the private key")?;
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encode the public key")?;
    Ok((private.to_string(), public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    const ISSUER: &str = "contrail-dev";
    const AUDIENCE: &str = "contrail";

    fn keys() -> (TokenIssuer, TokenVerifier) {
        let (private, public) = generate_key_pair().unwrap();
        let issuer = TokenIssuer::from_pem(&private, ISSUER, AUDIENCE).unwrap();
        let verifier = TokenVerifier::from_settings(&AuthSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: Some(public),
            public_key_file: None,
            jwks_file: None,
            leeway_secs: 5,
        })
        .unwrap();
        (issuer, verifier)
    }

    fn claims(scope: Scope) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: "cust-42".to_owned(),
            scope,
            iat: now,
            nbf: now,
            exp: now + 60,
        }
    }

    #[test]
    fn a_customer_token_names_its_customer_and_acts_only_for_it() {
        let (issuer, verifier) = keys();
        let token = issuer
            .issue(Scope::Customer, "cust-42", TimeDelta::minutes(5))
            .unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.customer_id(), Some("cust-42"));
        assert!(caller.may_act_for("cust-42"));
        assert!(!caller.may_act_for("cust-43"));
        assert!(caller.require_admin().is_err());
        assert!(caller.require_service().is_err());
    }

    #[test]
    fn an_admin_token_acts_for_anyone() {
        let (issuer, verifier) = keys();
        let token = issuer
            .issue(Scope::Admin, "ops", TimeDelta::minutes(5))
            .unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert!(caller.require_admin().is_ok() && caller.may_act_for("cust-43"));
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let (issuer, verifier) = keys();
        let mut expired = claims(Scope::Customer);
        expired.exp = Utc::now().timestamp() - 3600;
        let token = issuer.sign(&expired).unwrap();
        assert!(matches!(verifier.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_is_refused() {
        let (issuer, verifier) = keys();
        let mut elsewhere = claims(Scope::Admin);
        elsewhere.aud = "another-system".to_owned();
        assert!(verifier.verify(&issuer.sign(&elsewhere).unwrap()).is_err());
        let mut forged = claims(Scope::Admin);
        forged.iss = "someone-else".to_owned();
        assert!(verifier.verify(&issuer.sign(&forged).unwrap()).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let (_, verifier) = keys();
        let (stranger, _) = keys();
        let token = stranger
            .issue(Scope::Admin, "ops", TimeDelta::minutes(5))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let (_, verifier) = keys();
        use base64_free::encode;
        let header = encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = encode(
            serde_json::to_string(&claims(Scope::Admin))
                .unwrap()
                .as_bytes(),
        );
        assert!(verifier.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn a_key_set_verifies_tokens_by_the_key_their_kid_names() {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let (private, public) = generate_key_pair().unwrap();
        let raw = ed25519_dalek::VerifyingKey::from_public_key_pem(&public)
            .unwrap()
            .to_bytes();
        let (_, other_public) = generate_key_pair().unwrap();
        let other_raw = ed25519_dalek::VerifyingKey::from_public_key_pem(&other_public)
            .unwrap()
            .to_bytes();
        let jwks = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "old", "x": base64_free::encode(&other_raw)},
            {"kty": "OKP", "crv": "Ed25519", "kid": "current", "x": base64_free::encode(&raw)},
        ]});
        let dir = std::env::temp_dir().join(format!("jwks-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        let verifier = TokenVerifier::from_settings(&AuthSettings {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: None,
            public_key_file: None,
            jwks_file: Some(path),
            leeway_secs: 5,
        })
        .unwrap();
        let key = EncodingKey::from_ed_pem(private.as_bytes()).unwrap();
        let sign = |kid: &str| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(kid.to_owned());
            jsonwebtoken::encode(&header, &claims(Scope::Admin), &key).unwrap()
        };
        assert!(verifier.verify(&sign("current")).is_ok());
        assert!(
            verifier.verify(&sign("old")).is_err(),
            "the kid names the wrong key"
        );
        assert!(verifier.verify(&sign("unknown")).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        let (issuer, verifier) = keys();
        let token = issuer
            .issue(Scope::Admin, "ops", TimeDelta::minutes(5))
            .unwrap();
        let (parts, ()) = Request::builder()
            .header("authorization", format!("Basic {token}"))
            .body(())
            .unwrap()
            .into_parts();
        assert!(matches!(
            verifier.caller_of(&parts),
            Err(TokenError::Missing)
        ));
        let (parts, ()) = Request::builder()
            .header("authorization", format!("bearer {token}"))
            .body(())
            .unwrap()
            .into_parts();
        assert!(verifier.caller_of(&parts).is_ok());
    }

    /// Unpadded base64url, enough to forge a header in a test.
    mod base64_free {
        pub fn encode(bytes: &[u8]) -> String {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
