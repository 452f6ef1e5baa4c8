//! What the saga carries in its slip, and what its steps returned.
//!
//! The slip stores both as JSON; this module is the one place that says
//! which type each is, so they are written and read back with that type and
//! a mismatch is an error rather than a default.

use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::notification::{Contact, FlightSummary, NotificationKind, Passenger, SentMessage};
use contracts::payment::PaymentEntry;
use contracts::Money;
use saga::RoutingSlip;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::BookingStep;
use crate::db::CardRecord;

/// What the steps need to write their commands, kept in the slip's variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingVariables {
    pub booking_id: Uuid,
    pub customer_id: String,
    pub flight: FlightSummary,
    pub hold_id: Uuid,
    pub seats: u32,
    pub passengers: Vec<Passenger>,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRecord>,
    pub miles_offered: u64,
    pub quoted_total: Money,
}

const VARIABLES_KEY: &str = "booking";

impl BookingVariables {
    pub fn into_map(self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut map = serde_json::Map::new();
        map.insert(VARIABLES_KEY.to_owned(), serde_json::to_value(self)?);
        Ok(map)
    }

    pub fn of(slip: &RoutingSlip) -> anyhow::Result<Self> {
        let value = slip
            .variables
            .get(VARIABLES_KEY)
            .ok_or_else(|| anyhow::anyhow!("saga {} has no booking variables", slip.saga_id))?;
        Self::deserialize(value)
            .with_context(|| format!("read the booking variables of saga {}", slip.saga_id))
    }
}

/// `HoldSeats` succeeded: the seats are held at a locked fare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldSeats {
    pub hold_id: Uuid,
    pub seats: u32,
    pub fare: Money,
    pub total: Money,
    pub expires_at: DateTime<Utc>,
}

/// `ReleaseSeats` or `ConfirmBooking` succeeded for this hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldSettled {
    pub hold_id: Uuid,
}

/// `TakePayment` succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub captures: Vec<PaymentEntry>,
}

/// `Refund` succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub refunds: Vec<PaymentEntry>,
}

/// A notification step succeeded: the messages are recorded for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRecorded {
    pub kind: NotificationKind,
    pub messages: Vec<SentMessage>,
}

/// The held seats, once `HoldSeats` has succeeded.
pub fn held_seats(slip: &RoutingSlip) -> anyhow::Result<Option<HeldSeats>> {
    Ok(slip.result_of(BookingStep::HoldSeats)?)
}

/// The price: the held fare once seats are held, the quote before.
pub fn price(slip: &RoutingSlip, variables: &BookingVariables) -> anyhow::Result<Money> {
    Ok(held_seats(slip)?.map_or(variables.quoted_total, |held| held.total))
}

/// Whether the customer was told the booking is confirmed.
pub fn confirmation_sent(slip: &RoutingSlip) -> anyhow::Result<bool> {
    let sent: Option<MessagesRecorded> = slip.result_of(BookingStep::SendConfirmation)?;
    Ok(sent.is_some())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::steps::itinerary::tests::settings;
    use crate::steps::SAGA_TYPE;
    use chrono::TimeZone;
    use contracts::Currency;
    use saga::{Reply, SagaStep, StepOutcome};
    use serde_json::json;

    pub fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    pub fn variables(card: bool, miles: u64) -> BookingVariables {
        BookingVariables {
            booking_id: Uuid::now_v7(),
            customer_id: "cust-42".to_owned(),
            flight: FlightSummary {
                flight_id: Uuid::now_v7(),
                flight_number: "CT123".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            },
            hold_id: Uuid::now_v7(),
            seats: 2,
            passengers: vec![],
            contact: Contact {
                email: Some("ada@example.com".to_owned()),
                phone: None,
            },
            card: card.then(|| CardRecord {
                card_token: Uuid::now_v7(),
                brand: "visa".to_owned(),
                last4: "4242".to_owned(),
            }),
            miles_offered: miles,
            quoted_total: usd("398.00"),
        }
    }

    pub fn slip(variables: &BookingVariables) -> RoutingSlip {
        let now = Utc::now();
        RoutingSlip::new(
            variables.booking_id,
            SAGA_TYPE,
            settings().itinerary(),
            variables.clone().into_map().unwrap(),
            settings().deadline(now),
            now,
        )
        .unwrap()
    }

    pub fn hold(slip: &mut RoutingSlip, data: serde_json::Value) {
        slip.start(Utc::now());
        let held = Reply {
            step: BookingStep::HoldSeats.name().to_owned(),
            attempt: 1,
            outcome: StepOutcome::Succeeded { data },
        };
        slip.on_reply(held, Utc::now());
    }

    #[test]
    fn the_quote_is_the_price_until_seats_are_held() {
        let variables = variables(true, 0);
        assert_eq!(price(&slip(&variables), &variables).unwrap(), usd("398.00"));
    }

    #[test]
    fn the_held_fare_is_the_price_once_seats_are_held() {
        let variables = variables(true, 0);
        let mut slip = slip(&variables);
        let held = HeldSeats {
            hold_id: variables.hold_id,
            seats: 2,
            fare: usd("210.00"),
            total: usd("420.00"),
            expires_at: Utc::now(),
        };
        hold(&mut slip, serde_json::to_value(&held).unwrap());
        assert_eq!(price(&slip, &variables).unwrap(), usd("420.00"));
    }

    #[test]
    fn a_held_result_of_another_shape_is_an_error_not_the_quote() {
        let variables = variables(true, 0);
        let mut slip = slip(&variables);
        hold(&mut slip, json!({"amount_due": usd("420.00")}));
        assert!(price(&slip, &variables).is_err());
    }
}
