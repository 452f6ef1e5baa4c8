//! payment's messages: the commands it accepts on `payment.commands` (keyed
//! by booking id), its replies on `booking.saga-replies`, and its public
//! events on `payment.events` (keyed by booking id; a miles credit that
//! belongs to no booking is keyed by customer id).
//!
//! Card numbers never travel in messages: booking exchanges the card for a
//! `card_token` over payment's HTTP API (`POST /cards`) before the saga
//! starts, so no outbox row, topic or log line ever holds a card number.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Money, MoneyError};
use crate::saga::StepRef;
use crate::Message;

/// Miles redeem at this many miles per 1.00 of the fare's currency.
pub const MILES_PER_CURRENCY_UNIT: u64 = 100;

/// Charge a booking: by card, by miles, or both (`card.amount + miles.amount
/// == total`). Idempotent per booking and method: redelivered or retried, a
/// booking is captured at most once by card and at most once by miles. Refused
/// once the booking's payment is closed by a [`Refund`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakePayment {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub customer_id: String,
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardCharge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miles: Option<MilesRedemption>,
}

impl Message for TakePayment {
    const MESSAGE_TYPE: &'static str = "payment.TakePayment.v1";
}

/// The card part of a payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardCharge {
    /// From `POST /cards` on payment.
    pub card_token: Uuid,
    pub amount: Money,
}

/// The miles part of a payment: `miles` redeemed for `amount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilesRedemption {
    pub miles: u64,
    pub amount: Money,
}

/// The most of `total` that `available` miles can pay, and the miles it costs.
///
/// Miles are worth [`MILES_PER_CURRENCY_UNIT`] per unit of `total`'s currency,
/// rounded *down* to the currency's minor unit; the miles charged for an
/// amount are rounded *up*, so rounding never favours either side twice.
/// `None` when `available` is zero.
pub fn redeem_miles(available: u64, total: &Money) -> Result<Option<MilesRedemption>, MoneyError> {
    if available == 0 || total.is_zero() {
        return Ok(None);
    }
    let currency = total.currency();
    let per_unit = Decimal::from(MILES_PER_CURRENCY_UNIT);
    let worth = (Decimal::from(available) / per_unit)
        .round_dp_with_strategy(currency.minor_units(), RoundingStrategy::ToZero);
    let amount = if worth < total.amount() {
        Money::new(worth, currency)?
    } else {
        *total
    };
    if amount.is_zero() {
        return Ok(None);
    }
    let miles = miles_for(&amount)?;
    Ok(Some(MilesRedemption { miles, amount }))
}

/// What `amount` costs in miles, rounded up to a whole mile.
pub fn miles_for(amount: &Money) -> Result<u64, MoneyError> {
    let miles = (amount.amount() * Decimal::from(MILES_PER_CURRENCY_UNIT)).ceil();
    u64::try_from(miles).map_err(|_| MoneyError::Overflow)
}

/// Give back everything a booking paid, card and miles separately. Refunding
/// a booking that paid nothing succeeds and closes it: a `TakePayment` that
/// arrives later is refused, so a late capture cannot outlive its refund.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub reason: String,
}

impl Message for Refund {
    const MESSAGE_TYPE: &'static str = "payment.Refund.v1";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Miles,
}

/// One ledger movement of a booking's payment: a capture or a refund.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEntry {
    pub payment_id: Uuid,
    pub method: PaymentMethod,
    /// For miles, their money value.
    pub amount: Money,
    /// For miles, how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miles: Option<u64>,
}

/// The booking is paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentTaken {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub captures: Vec<PaymentEntry>,
}

impl Message for PaymentTaken {
    const MESSAGE_TYPE: &'static str = "payment.PaymentTaken.v1";
}

/// Why a payment was refused: a business answer, final for that command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRefusal {
    CardDeclined,
    InsufficientFunds,
    InsufficientMiles,
    UnknownCard,
    /// The booking was refunded already; it takes no more payments.
    PaymentClosed,
    Invalid,
}

impl PaymentRefusal {
    /// The refusal as it travels (its JSON string).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentRefusal::CardDeclined => "card_declined",
            PaymentRefusal::InsufficientFunds => "insufficient_funds",
            PaymentRefusal::InsufficientMiles => "insufficient_miles",
            PaymentRefusal::UnknownCard => "unknown_card",
            PaymentRefusal::PaymentClosed => "payment_closed",
            PaymentRefusal::Invalid => "invalid",
        }
    }
}

/// The payment was refused; nothing was captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefused {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub refusal: PaymentRefusal,
    pub detail: String,
}

impl Message for PaymentRefused {
    const MESSAGE_TYPE: &'static str = "payment.PaymentRefused.v1";
}

/// The payment could not be taken *this time* (the card gateway failed or
/// timed out); nothing was captured, and trying again may succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub detail: String,
}

impl Message for PaymentFailed {
    const MESSAGE_TYPE: &'static str = "payment.PaymentFailed.v1";
}

/// Everything the booking paid is given back (empty when it paid nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub refunds: Vec<PaymentEntry>,
}

impl Message for PaymentRefunded {
    const MESSAGE_TYPE: &'static str = "payment.PaymentRefunded.v1";
}

/// Money was taken for a booking: one event per method (a booking paid
/// partly in miles has two). Never a card number or token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    /// The ledger entry.
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub customer_id: String,
    pub method: PaymentMethod,
    /// For miles, their money value.
    pub amount: Money,
    /// For miles, how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miles: Option<u64>,
    pub captured_at: DateTime<Utc>,
}

impl Message for PaymentCaptured {
    const MESSAGE_TYPE: &'static str = "payment.PaymentCaptured.v1";
}

/// A capture was given back, whole, by the method it was taken with.
/// (`payment.PaymentRefunded.v1` is the saga's reply; this is the public fact.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundIssued {
    /// The ledger entry of the refund.
    pub payment_id: Uuid,
    /// The capture it gives back.
    pub refund_of: Uuid,
    pub booking_id: Uuid,
    pub customer_id: String,
    pub method: PaymentMethod,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miles: Option<u64>,
    pub refunded_at: DateTime<Utc>,
}

impl Message for RefundIssued {
    const MESSAGE_TYPE: &'static str = "payment.RefundIssued.v1";
}

/// Why miles were added to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilesCreditKind {
    /// Granted by an operator (a welcome bonus, a goodwill gesture).
    Grant,
    /// Miles a booking redeemed, given back by its refund.
    Refund,
}

impl MilesCreditKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Refund => "refund",
        }
    }
}

/// Miles were added to a customer's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilesCredited {
    /// The miles ledger entry.
    pub entry_id: Uuid,
    pub customer_id: String,
    pub kind: MilesCreditKind,
    pub miles: u64,
    /// The booking whose refund it is, for [`MilesCreditKind::Refund`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Uuid>,
    pub credited_at: DateTime<Utc>,
}

impl Message for MilesCredited {
    const MESSAGE_TYPE: &'static str = "payment.MilesCredited.v1";
}

/// Miles were spent on a booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilesRedeemed {
    pub entry_id: Uuid,
    pub customer_id: String,
    pub booking_id: Uuid,
    pub miles: u64,
    pub redeemed_at: DateTime<Utc>,
}

impl Message for MilesRedeemed {
    const MESSAGE_TYPE: &'static str = "payment.MilesRedeemed.v1";
}

/// Every message type payment publishes on `payment.events`.
pub const EVENT_TYPES: [&str; 4] = [
    PaymentCaptured::MESSAGE_TYPE,
    RefundIssued::MESSAGE_TYPE,
    MilesCredited::MESSAGE_TYPE,
    MilesRedeemed::MESSAGE_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn a_payment_refusal_reads_as_it_travels() {
        for refusal in [
            PaymentRefusal::CardDeclined,
            PaymentRefusal::InsufficientFunds,
            PaymentRefusal::InsufficientMiles,
            PaymentRefusal::UnknownCard,
            PaymentRefusal::PaymentClosed,
            PaymentRefusal::Invalid,
        ] {
            assert_eq!(
                serde_json::to_value(refusal).unwrap(),
                serde_json::Value::from(refusal.as_str())
            );
        }
    }

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    #[test]
    fn miles_pay_up_to_the_total_at_one_hundred_per_unit() {
        let all = redeem_miles(50_000, &usd("398.00")).unwrap().unwrap();
        assert_eq!(all.amount, usd("398.00"));
        assert_eq!(all.miles, 39_800);

        let part = redeem_miles(10_050, &usd("398.00")).unwrap().unwrap();
        assert_eq!(part.amount, usd("100.50"));
        assert_eq!(part.miles, 10_050);
    }

    #[test]
    fn no_miles_redeem_nothing() {
        assert_eq!(redeem_miles(0, &usd("10.00")).unwrap(), None);
    }

    #[test]
    fn miles_worth_less_than_a_minor_unit_redeem_nothing() {
        let yen = Money::parse("1000", Currency::Jpy).unwrap();
        assert_eq!(redeem_miles(99, &yen).unwrap(), None);
        let one_yen = redeem_miles(199, &yen).unwrap().unwrap();
        assert_eq!(one_yen.amount, Money::parse("1", Currency::Jpy).unwrap());
        assert_eq!(one_yen.miles, 100);
    }

    #[test]
    fn miles_for_an_amount_finer_than_a_mile_round_up() {
        let dinar = Money::parse("1.005", Currency::Kwd).unwrap();
        assert_eq!(miles_for(&dinar).unwrap(), 101);
    }
}
