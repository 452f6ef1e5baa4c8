//! The `POST /bookings` body: its shape, its validation, and the fingerprint
//! that tells a retried request from a different one under the same
//! `Idempotency-Key`.

/// The card in a booking request is exactly what payment's tokenizer takes:
/// booking checks its shape, then passes it on.
pub use contracts::http::payment::CardRequest;
use contracts::notification::{Contact, Passenger};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

pub const MAX_PASSENGERS: usize = 9;
const MAX_NAME_CHARS: usize = 100;
const MAX_MILES: u64 = 100_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    pub customer_id: String,
    pub flight_id: Uuid,
    pub passengers: Vec<PassengerInput>,
    pub payment: PaymentInput,
    pub contact: ContactInput,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassengerInput {
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    #[serde(default)]
    pub card: Option<CardRequest>,
    /// The most miles the customer offers; what the fare needs is redeemed.
    #[serde(default)]
    pub miles: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// One invalid field, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub detail: String,
}

impl FieldError {
    fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// A request that passed validation, normalized.
#[derive(Debug, Clone)]
pub struct ValidBooking {
    pub customer_id: String,
    pub flight_id: Uuid,
    pub passengers: Vec<Passenger>,
    pub card: Option<CardRequest>,
    pub miles: u64,
    pub contact: Contact,
}

impl ValidBooking {
    pub fn seats(&self) -> u32 {
        // At most MAX_PASSENGERS, checked by validation.
        u32::try_from(self.passengers.len()).unwrap_or(u32::MAX)
    }
}

/// Checks every field and reports every problem at once.
pub fn validate(request: &CreateBooking) -> Result<ValidBooking, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Err(detail) = validate_customer_id(&request.customer_id) {
        errors.push(FieldError::new("customer_id", detail));
    }

    if request.passengers.is_empty() || request.passengers.len() > MAX_PASSENGERS {
        errors.push(FieldError::new(
            "passengers",
            format!("a booking has 1 to {MAX_PASSENGERS} passengers"),
        ));
    }
    let mut passengers = Vec::with_capacity(request.passengers.len());
    for (index, passenger) in request.passengers.iter().enumerate() {
        let first_name = name(
            &passenger.first_name,
            &format!("passengers[{index}].first_name"),
            &mut errors,
        );
        let last_name = name(
            &passenger.last_name,
            &format!("passengers[{index}].last_name"),
            &mut errors,
        );
        passengers.push(Passenger {
            first_name,
            last_name,
        });
    }

    let card = request.payment.card.as_ref().map(|card| {
        let number: String = card
            .number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(FieldError::new(
                "payment.card.number",
                "a card number is 12 to 19 digits (spaces and dashes are ignored)",
            ));
        }
        if !is_expiry(&card.expiry) {
            errors.push(FieldError::new("payment.card.expiry", "expiry is MM/YY"));
        }
        if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(FieldError::new(
                "payment.card.cvc",
                "a CVC is 3 or 4 digits",
            ));
        }
        CardRequest {
            number,
            expiry: card.expiry.clone(),
            cvc: card.cvc.clone(),
        }
    });
    if request.payment.miles > MAX_MILES {
        errors.push(FieldError::new(
            "payment.miles",
            format!("at most {MAX_MILES} miles"),
        ));
    }
    if card.is_none() && request.payment.miles == 0 {
        errors.push(FieldError::new("payment", "pay by card, by miles, or both"));
    }

    let email = request
        .contact
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let phone = request
        .contact
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if email.is_none() && phone.is_none() {
        errors.push(FieldError::new(
            "contact",
            "give an email address, a phone number, or both",
        ));
    }
    if email.is_some_and(|email| !is_email(email)) {
        errors.push(FieldError::new("contact.email", "not an email address"));
    }
    if phone.is_some_and(|phone| !is_phone(phone)) {
        errors.push(FieldError::new(
            "contact.phone",
            "a phone number is E.164: + and 8 to 15 digits",
        ));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidBooking {
        customer_id: request.customer_id.clone(),
        flight_id: request.flight_id,
        passengers,
        card,
        miles: request.payment.miles,
        contact: Contact {
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
        },
    })
}

/// The secret request fingerprints are keyed with.
#[derive(Clone)]
pub struct FingerprintKey(Hmac<Sha256>);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(…)")
    }
}

impl FingerprintKey {
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        let secret = secret.expose_secret();
        anyhow::ensure!(
            secret.len() >= 16,
            "idempotency.fingerprint_key must be at least 16 characters"
        );
        let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|error| anyhow::anyhow!("use the fingerprint key: {error}"))?;
        Ok(Self(mac))
    }
}

/// A fingerprint of the request as the client meant it: the same body in
/// another key order or spacing has the same fingerprint. Keyed
/// (HMAC-SHA256 with a secret from configuration), so the stored value
/// reveals nothing of the card number in the request even to someone who
/// tries every plausible number; the CVC is left out altogether — it is
/// never stored, logged or hashed in any form.
pub fn fingerprint(request: &CreateBooking, key: &FingerprintKey) -> String {
    let mut canonical = serde_json::to_value(request).unwrap_or_default();
    if let Some(card) = canonical
        .pointer_mut("/payment/card")
        .and_then(serde_json::Value::as_object_mut)
    {
        card.remove("cvc");
    }
    let mut mac = key.0.clone();
    mac.update(&serde_json::to_vec(&canonical).unwrap_or_default());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Customer ids are opaque, but bounded and printable.
pub fn validate_customer_id(customer_id: &str) -> Result<(), &'static str> {
    let valid = (1..=64).contains(&customer_id.len())
        && customer_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err("a customer id is 1 to 64 letters, digits, '-', '_' or '.'")
    }
}

fn name(value: &str, field: &str, errors: &mut Vec<FieldError>) -> String {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            format!("a name is 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    trimmed.to_owned()
}

fn is_expiry(expiry: &str) -> bool {
    let bytes = expiry.as_bytes();
    if bytes.len() != 5 || bytes[2] != b'/' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| {
        expiry
            .get(range)
            .filter(|part| part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u32>().ok())
    };
    matches!((digits(0..2), digits(3..5)), (Some(month), Some(_)) if (1..=12).contains(&month))
}

fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_phone(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: serde_json::Value) -> CreateBooking {
        serde_json::from_value(body).unwrap()
    }

    fn valid_body() -> serde_json::Value {
        json!({
            "customer_id": "cust-42",
            "flight_id": "0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5a",
            "passengers": [{"first_name": "Ada", "last_name": "Lovelace"}],
            "payment": {"card": {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}, "miles": 0},
            "contact": {"email": "ada@example.com", "phone": "+821012345678"}
        })
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn a_well_formed_booking_is_valid_and_normalized() {
        let valid = validate(&request(valid_body())).unwrap();
        assert_eq!(valid.seats(), 1);
        assert_eq!(valid.card.unwrap().number, "4242424242424242");
        assert_eq!(valid.contact.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut body = valid_body();
        body["customer_id"] = json!("has space");
        body["passengers"][0]["first_name"] = json!("  ");
        body["payment"]["card"]["expiry"] = json!("13/30");
        body["payment"]["card"]["cvc"] = json!("12");
        body["contact"]["email"] = json!("not-an-email");
        body["contact"]["phone"] = json!("010-1234");
        let errors = validate(&request(body)).unwrap_err();
        assert_eq!(
            fields(errors),
            [
                "customer_id",
                "passengers[0].first_name",
                "payment.card.expiry",
                "payment.card.cvc",
                "contact.email",
                "contact.phone"
            ]
        );
    }

    #[test]
    fn a_booking_has_one_to_nine_passengers() {
        let mut body = valid_body();
        body["passengers"] = json!([]);
        assert_eq!(
            fields(validate(&request(body.clone())).unwrap_err()),
            ["passengers"]
        );
        body["passengers"] = json!(vec![json!({"first_name": "A", "last_name": "B"}); 10]);
        assert_eq!(
            fields(validate(&request(body)).unwrap_err()),
            ["passengers"]
        );
    }

    #[test]
    fn a_booking_pays_somehow_and_says_where_to_write() {
        let mut body = valid_body();
        body["payment"] = json!({"miles": 0});
        body["contact"] = json!({});
        assert_eq!(
            fields(validate(&request(body)).unwrap_err()),
            ["payment", "contact"]
        );
    }

    #[test]
    fn miles_alone_are_a_payment() {
        let mut body = valid_body();
        body["payment"] = json!({"miles": 40000});
        let valid = validate(&request(body)).unwrap();
        assert!(valid.card.is_none());
        assert_eq!(valid.miles, 40_000);
    }

    #[test]
    fn card_numbers_are_digits_of_a_plausible_length() {
        for number in ["4242", "4242abcd42424242", "42424242424242424242"] {
            let mut body = valid_body();
            body["payment"]["card"]["number"] = json!(number);
            assert_eq!(
                fields(validate(&request(body)).unwrap_err()),
                ["payment.card.number"],
                "{number}"
            );
        }
    }

    #[test]
    fn the_fingerprint_ignores_key_order_and_spacing_but_not_content() {
        let a = request(valid_body());
        let b: CreateBooking = serde_json::from_str(
            r#"{"contact": {"phone": "+821012345678", "email": "ada@example.com"},
                "customer_id": "cust-42", "flight_id": "0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5a",
                "passengers": [{"last_name": "Lovelace", "first_name": "Ada"}],
                "payment": {"miles": 0, "card": {"cvc": "123", "expiry": "12/30", "number": "4242 4242 4242 4242"}}}"#,
        )
        .unwrap();
        let key = key("a test secret of some length");
        assert_eq!(fingerprint(&a, &key), fingerprint(&b, &key));
        let mut changed = valid_body();
        changed["passengers"][0]["first_name"] = json!("Grace");
        assert_ne!(fingerprint(&a, &key), fingerprint(&request(changed), &key));
    }

    fn key(secret: &str) -> FingerprintKey {
        FingerprintKey::new(&SecretString::from(secret.to_owned())).unwrap()
    }

    #[test]
    fn the_fingerprint_depends_on_the_secret_and_never_on_the_cvc() {
        let a = request(valid_body());
        let mut other_cvc = valid_body();
        other_cvc["payment"]["card"]["cvc"] = json!("999");
        let key_one = key("a test secret of some length");
        assert_eq!(
            fingerprint(&a, &key_one),
            fingerprint(&request(other_cvc), &key_one)
        );
        assert_ne!(
            fingerprint(&a, &key_one),
            fingerprint(&a, &key("another secret of some length"))
        );
        assert!(FingerprintKey::new(&SecretString::from("short".to_owned())).is_err());
    }

    #[test]
    fn a_card_never_prints_its_number() {
        let card = request(valid_body()).payment.card.unwrap();
        let printed = format!("{card:?}");
        assert!(!printed.contains("4242") && !printed.contains("123"));
    }

    #[test]
    fn emails_and_phones_are_checked_for_shape() {
        assert!(is_email("a.b+c@example.co.kr"));
        for email in [
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@.com",
        ] {
            assert!(!is_email(email), "{email}");
        }
        assert!(is_phone("+14155550123"));
        for phone in ["14155550123", "+1415", "+1415555012345678", "+1-415-555"] {
            assert!(!is_phone(phone), "{phone}");
        }
    }
}
