//! Bearer tokens for tests: one Ed25519 issuer key per test process, whose
//! public half every service spawned here trusts (see `overrides_for`).

use std::sync::OnceLock;

use chrono::TimeDelta;
use service_kit::auth::{generate_key_pair, Claims, Scope, TokenIssuer};

/// The issuer and audience the services' default settings expect.
pub const ISSUER: &str = "contrail-dev";
pub const AUDIENCE: &str = "contrail";

struct Keys {
    issuer: TokenIssuer,
    public_key_pem: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (private, public_key_pem) = match generate_key_pair() {
            Ok(pair) => pair,
            Err(error) => panic!("generate the test issuer key: {error:#}"),
        };
        let issuer = match TokenIssuer::from_pem(&private, ISSUER, AUDIENCE) {
            Ok(issuer) => issuer,
            Err(error) => panic!("load the test issuer key: {error:#}"),
        };
        Keys {
            issuer,
            public_key_pem,
        }
    })
}

/// The public key services spawned by this process trust.
pub fn public_key_pem() -> &'static str {
    &keys().public_key_pem
}

/// The test issuer, to sign claims of a test's choosing (expired, misaddressed).
pub fn issuer() -> &'static TokenIssuer {
    &keys().issuer
}

fn issue(scope: Scope, subject: &str) -> String {
    match issuer().issue(scope, subject, TimeDelta::hours(1)) {
        Ok(token) => token,
        Err(error) => panic!("issue a test token: {error:#}"),
    }
}

/// A token acting for `customer_id` only.
pub fn customer(customer_id: &str) -> String {
    issue(Scope::Customer, customer_id)
}

/// An operator's token.
pub fn admin() -> String {
    issue(Scope::Admin, "test-operator")
}

/// A token for `service` calling another service.
pub fn service(service: &str) -> String {
    issue(Scope::Service, service)
}

/// Valid claims for `scope`, to alter before signing with [`issuer`].
pub fn claims(scope: Scope, subject: &str) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: subject.to_owned(),
        scope,
        iat: now,
        nbf: now,
        exp: now + 3600,
    }
}

/// A token signed by `issuer` for exactly `claims`.
pub fn signed(claims: &Claims) -> String {
    match issuer().sign(claims) {
        Ok(token) => token,
        Err(error) => panic!("sign test claims: {error:#}"),
    }
}

/// A well-formed admin token signed by a key nobody trusts.
pub fn forged_admin() -> String {
    let (private, _) = match generate_key_pair() {
        Ok(pair) => pair,
        Err(error) => panic!("generate a stranger's key: {error:#}"),
    };
    let stranger = match TokenIssuer::from_pem(&private, ISSUER, AUDIENCE) {
        Ok(issuer) => issuer,
        Err(error) => panic!("load a stranger's key: {error:#}"),
    };
    match stranger.issue(Scope::Admin, "intruder", TimeDelta::hours(1)) {
        Ok(token) => token,
        Err(error) => panic!("forge a token: {error:#}"),
    }
}
