//! The card gateway: where card tokens are issued, charged and refunded.
//!
//! [`CardGateway`] is the seam a real processor adapter plugs into;
//! [`SimulatedGateway`] stands in for one, with published test cards whose
//! behaviour is fixed (approve, decline, insufficient funds, fail twice then
//! approve).
//!
//! Every call takes the caller's transaction. The simulator keeps its vault
//! and its attempt counts there, so its answers commit (or roll back) with the
//! payment they decided; a real adapter would ignore it and call the processor
//! with the booking id as idempotency key, so that a call repeated after a
//! crash returns the first call's outcome instead of charging twice.

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use contracts::Money;
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cards::{CardDetails, Expiry, TokenizedCard};

/// A card processor.
pub trait CardGateway: Send + Sync + std::fmt::Debug + 'static {
    /// Vaults a validated card and returns its token.
    fn tokenize<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        card: &'a CardDetails,
    ) -> BoxFuture<'a, Result<TokenizedCard, TokenizeError>>;

    /// Charges the card behind a token; idempotent per booking.
    fn charge<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        charge: &'a Charge,
    ) -> BoxFuture<'a, Result<Approval, ChargeError>>;

    /// Gives a captured charge back; idempotent per booking.
    fn refund<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        refund: &'a CardRefund,
    ) -> BoxFuture<'a, Result<Approval, RefundError>>;
}

#[derive(Debug, Clone)]
pub struct Charge {
    /// The idempotency key a real processor would be given.
    pub booking_id: Uuid,
    pub card_token: Uuid,
    pub amount: Money,
}

#[derive(Debug, Clone)]
pub struct CardRefund {
    pub booking_id: Uuid,
    pub card_token: Uuid,
    pub amount: Money,
    /// The capture's reference at the gateway, when it gave one.
    pub capture_reference: Option<String>,
}

/// The gateway accepted the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The gateway's reference, kept in the ledger for reconciliation.
    pub reference: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("the gateway does not know this card")]
    UnknownCard,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a charge was not approved.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// The issuer said no: final for this payment.
    #[error("card declined: {0}")]
    Declined(String),
    #[error("insufficient funds on the card")]
    InsufficientFunds,
    #[error("no card is known for this token")]
    UnknownCard,
    /// The gateway failed or timed out; nothing was charged and a later try may succeed.
    #[error("card gateway unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no card is known for this token")]
    UnknownCard,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a test card behaves when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    Approves,
    Declines,
    InsufficientFunds,
    FailsTwiceThenApproves,
}

impl Behaviour {
    /// As the vault stores it (`card_tokens.behaviour`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approves => "approves",
            Self::Declines => "declines",
            Self::InsufficientFunds => "insufficient_funds",
            Self::FailsTwiceThenApproves => "fails_twice_then_approves",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        [
            Self::Approves,
            Self::Declines,
            Self::InsufficientFunds,
            Self::FailsTwiceThenApproves,
        ]
        .into_iter()
        .find(|behaviour| behaviour.as_str() == stored)
    }
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approves => "approves",
            Self::Declines => "declined",
            Self::InsufficientFunds => "declined for insufficient funds",
            Self::FailsTwiceThenApproves => "fails transiently twice per booking, then approves",
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TestCard {
    pub number: &'static str,
    pub behaviour: Behaviour,
}

/// The only cards the simulated gateway accepts.
pub const TEST_CARDS: [TestCard; 4] = [
    TestCard {
        number: "4242424242424242",
        behaviour: Behaviour::Approves,
    },
    TestCard {
        number: "4000000000000002",
        behaviour: Behaviour::Declines,
    },
    TestCard {
        number: "4000000000009995",
        behaviour: Behaviour::InsufficientFunds,
    },
    TestCard {
        number: "4000000000000119",
        behaviour: Behaviour::FailsTwiceThenApproves,
    },
];

/// How many transient failures the flaky test card gives each booking.
const FLAKY_FAILURES: i32 = 2;

fn behaviour_of(number: &str) -> Option<Behaviour> {
    TEST_CARDS
        .iter()
        .find(|card| card.number == number)
        .map(|card| card.behaviour)
}

/// What the simulator answers to the `attempt`-th charge (1-based) of a
/// booking on a card with `behaviour`, expiring at `expiry`, on `today`.
pub fn decide_charge(
    behaviour: Behaviour,
    expiry: Expiry,
    attempt: i32,
    today: NaiveDate,
) -> Result<(), ChargeError> {
    if !expiry.is_valid_on(today) {
        return Err(ChargeError::Declined(format!(
            "the card expired at the end of {expiry}"
        )));
    }
    match behaviour {
        Behaviour::Approves => Ok(()),
        Behaviour::Declines => Err(ChargeError::Declined(
            "the issuer declined the charge".to_owned(),
        )),
        Behaviour::InsufficientFunds => Err(ChargeError::InsufficientFunds),
        Behaviour::FailsTwiceThenApproves if attempt <= FLAKY_FAILURES => {
            Err(ChargeError::Unavailable(format!(
                "the gateway timed out (simulated, attempt {attempt} of this booking)"
            )))
        }
        Behaviour::FailsTwiceThenApproves => Ok(()),
    }
}

/// The simulated processor, with its vault in payment's schema
/// (`card_tokens`). It keeps no card number: the test card's published
/// behaviour, decided at tokenization, is all a charge needs. The number is
/// dropped with the request; the CVC is checked and never kept.
#[derive(Debug, Clone, Default)]
pub struct SimulatedGateway;

impl SimulatedGateway {
    /// The vaulted card's behaviour and expiry.
    async fn vaulted(
        conn: &mut PgConnection,
        card_token: Uuid,
    ) -> anyhow::Result<Option<(Behaviour, Expiry)>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT behaviour, expiry FROM card_tokens WHERE card_token = $1")
                .bind(card_token)
                .fetch_optional(conn)
                .await
                .context("read a vaulted card")?;
        let Some((behaviour, expiry)) = row else {
            return Ok(None);
        };
        let behaviour = Behaviour::parse(&behaviour)
            .ok_or_else(|| anyhow::anyhow!("vaulted behaviour {behaviour:?} is unknown"))?;
        let expiry = Expiry::parse(&expiry)
            .map_err(|error| anyhow::anyhow!("vaulted expiry is malformed: {error}"))?;
        Ok(Some((behaviour, expiry)))
    }

    async fn count_attempt(conn: &mut PgConnection, charge: &Charge) -> anyhow::Result<i32> {
        sqlx::query_scalar(
            "INSERT INTO gateway_attempts (booking_id, card_token, attempts) VALUES ($1, $2, 1)
             ON CONFLICT (booking_id, card_token)
             DO UPDATE SET attempts = gateway_attempts.attempts + 1, last_attempt_at = now()
             RETURNING attempts",
        )
        .bind(charge.booking_id)
        .bind(charge.card_token)
        .fetch_one(conn)
        .await
        .context("count a gateway attempt")
    }
}

impl CardGateway for SimulatedGateway {
    fn tokenize<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        card: &'a CardDetails,
    ) -> BoxFuture<'a, Result<TokenizedCard, TokenizeError>> {
        Box::pin(async move {
            let Some(behaviour) = behaviour_of(card.number.digits()) else {
                return Err(TokenizeError::UnknownCard);
            };
            let tokenized = TokenizedCard {
                card_token: Uuid::now_v7(),
                brand: card.number.brand(),
                last4: card.number.last4().to_owned(),
                expiry: card.expiry.to_string(),
            };
            sqlx::query(
                "INSERT INTO card_tokens (card_token, behaviour, brand, last4, expiry)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tokenized.card_token)
            .bind(behaviour.as_str())
            .bind(tokenized.brand)
            .bind(&tokenized.last4)
            .bind(&tokenized.expiry)
            .execute(conn)
            .await
            .context("vault a card")?;
            Ok(tokenized)
        })
    }

    fn charge<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        charge: &'a Charge,
    ) -> BoxFuture<'a, Result<Approval, ChargeError>> {
        Box::pin(async move {
            let Some((behaviour, expiry)) = Self::vaulted(conn, charge.card_token).await? else {
                return Err(ChargeError::UnknownCard);
            };
            let attempt = Self::count_attempt(conn, charge).await?;
            decide_charge(behaviour, expiry, attempt, Utc::now().date_naive())?;
            Ok(Approval {
                reference: format!("sim_ch_{}", Uuid::now_v7().simple()),
            })
        })
    }

    fn refund<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        refund: &'a CardRefund,
    ) -> BoxFuture<'a, Result<Approval, RefundError>> {
        Box::pin(async move {
            // The simulated issuer always gives money back to a card it knows.
            if Self::vaulted(conn, refund.card_token).await?.is_none() {
                return Err(RefundError::UnknownCard);
            }
            Ok(Approval {
                reference: format!("sim_re_{}", Uuid::now_v7().simple()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
    }

    fn far() -> Expiry {
        Expiry::parse("12/40").unwrap()
    }

    #[test]
    fn a_behaviour_reads_back_as_the_vault_stores_it() {
        for card in TEST_CARDS {
            assert_eq!(
                Behaviour::parse(card.behaviour.as_str()),
                Some(card.behaviour)
            );
        }
        assert_eq!(Behaviour::parse("4242424242424242"), None);
    }

    #[test]
    fn every_test_card_is_a_valid_visa_number() {
        for card in TEST_CARDS {
            let number = crate::cards::CardNumber::parse(card.number).unwrap();
            assert_eq!(number.brand(), "visa");
        }
    }

    #[test]
    fn the_gateway_knows_only_its_test_cards() {
        assert_eq!(behaviour_of("4242424242424242"), Some(Behaviour::Approves));
        assert_eq!(behaviour_of("5555555555554444"), None);
    }

    #[test]
    fn each_test_card_answers_as_published() {
        let charge = |behaviour, attempt| decide_charge(behaviour, far(), attempt, today());
        assert!(charge(Behaviour::Approves, 1).is_ok());
        assert!(matches!(
            charge(Behaviour::Declines, 1),
            Err(ChargeError::Declined(_))
        ));
        assert!(matches!(
            charge(Behaviour::InsufficientFunds, 1),
            Err(ChargeError::InsufficientFunds)
        ));
    }

    #[test]
    fn the_flaky_card_fails_twice_per_booking_then_approves() {
        let outcomes: Vec<bool> = (1..=4)
            .map(|attempt| {
                decide_charge(Behaviour::FailsTwiceThenApproves, far(), attempt, today()).is_ok()
            })
            .collect();
        assert_eq!(outcomes, [false, false, true, true]);
        assert!(matches!(
            decide_charge(Behaviour::FailsTwiceThenApproves, far(), 1, today()),
            Err(ChargeError::Unavailable(_))
        ));
    }

    #[test]
    fn an_expired_card_is_declined_even_if_it_would_approve() {
        let expired = Expiry::parse("05/26").unwrap();
        assert!(matches!(
            decide_charge(Behaviour::Approves, expired, 1, today()),
            Err(ChargeError::Declined(_))
        ));
    }
}
