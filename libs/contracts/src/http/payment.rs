//! `POST /cards` on payment: a card in, a token out. The card number goes to
//! payment and nowhere else; what comes back is safe to store and to send
//! over Kafka.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A card as typed by the customer; payment validates it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    pub number: String,
    /// `MM/YY`.
    pub expiry: String,
    pub cvc: String,
}

/// Deliberately not derived: never print a card number or a CVC.
impl fmt::Debug for CardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardRequest")
            .field("number", &"[redacted]")
            .field("expiry", &self.expiry)
            .field("cvc", &"[redacted]")
            .finish()
    }
}

/// The token that stands for a card from now on (201 Created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardToken {
    pub card_token: Uuid,
    pub brand: String,
    pub last4: String,
    /// `MM/YY`.
    pub expiry: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_card_request_refuses_unknown_fields_and_never_prints_its_secrets() {
        let card: CardRequest = serde_json::from_value(
            json!({"number": "4242424242424242", "expiry": "12/39", "cvc": "123"}),
        )
        .unwrap();
        let printed = format!("{card:?}");
        assert!(
            !printed.contains("4242") && !printed.contains("123"),
            "{printed}"
        );
        let extra = json!({"number": "4242", "expiry": "12/39", "cvc": "123", "pin": "0000"});
        assert!(serde_json::from_value::<CardRequest>(extra).is_err());
    }
}
