//! Payment commands over Kafka (`payment.commands`, keyed by booking id), the
//! saga's way of charging and refunding a booking. Each is applied in the
//! consumer's transaction — inbox row, gateway bookkeeping, ledger rows and
//! the reply commit together — and answered on `booking.saga-replies`.
//!
//! A refusal (declined card, not enough miles, closed booking) and a
//! transient gateway failure are answers: they commit with their reply and
//! the saga decides what next. Only unexpected failures (the database) are
//! retried by the runner and, in the end, parked.
//!
//! Idempotency: a booking is captured at most once per method and refunded at
//! most once per capture. The ledger's unique constraints enforce it; the
//! handler's checks only make a repeated command answer with what exists.

use std::collections::HashSet;
use std::sync::Arc;

use contracts::payment::{
    miles_for, PaymentEntry, PaymentFailed, PaymentMethod, PaymentRefunded, PaymentRefusal,
    PaymentRefused, PaymentTaken, Refund, TakePayment,
};
use messaging::{Delivery, HandlerError, Handles, Participant};
use sqlx::PgConnection;

use crate::gateway::{CardGateway, CardRefund, Charge, ChargeError};
use crate::ledger::{self, EntryKind, LedgerEntry, NewEntry, RecordError};
use crate::miles;

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "payment.commands";

#[derive(Debug, Clone)]
pub struct PaymentCommands {
    pub gateway: Arc<dyn CardGateway>,
}

impl PaymentCommands {
    /// The payment commands, as the consumer applies them.
    pub fn participant(self) -> Participant<Self> {
        Participant::new(self).on::<TakePayment>().on::<Refund>()
    }
}

impl Handles<TakePayment> for PaymentCommands {
    async fn handle(
        &self,
        mut delivery: Delivery<'_>,
        command: TakePayment,
    ) -> Result<(), HandlerError> {
        self.take(&mut delivery, command).await
    }
}

impl Handles<Refund> for PaymentCommands {
    async fn handle(
        &self,
        mut delivery: Delivery<'_>,
        command: Refund,
    ) -> Result<(), HandlerError> {
        self.refund(&mut delivery, command).await
    }
}

/// What a `TakePayment` came to.
#[derive(Debug)]
enum Taken {
    Captured(Vec<LedgerEntry>),
    /// A repeated command: the booking was captured before.
    AlreadyCaptured(Vec<LedgerEntry>),
    Refused(PaymentRefusal, String),
    /// The gateway failed this time; nothing was captured.
    Failed(String),
}

impl PaymentCommands {
    #[tracing::instrument(
        skip_all,
        fields(booking_id = %command.booking_id, attempt = command.step.attempt),
    )]
    async fn take(
        &self,
        delivery: &mut Delivery<'_>,
        command: TakePayment,
    ) -> Result<(), HandlerError> {
        let conn = &mut *delivery.conn;
        ledger::lock_booking(conn, command.booking_id).await?;
        let taken = self.decide_take(conn, &command).await?;
        let step = command.step.clone();
        let booking_id = command.booking_id;
        match taken {
            Taken::Captured(captures) | Taken::AlreadyCaptured(captures) => {
                let captures: Vec<PaymentEntry> =
                    captures.iter().map(LedgerEntry::to_contract).collect();
                let reply = PaymentTaken {
                    step: step.clone(),
                    booking_id,
                    captures,
                };
                delivery.reply(&step, reply).await
            }
            Taken::Refused(refusal, detail) => {
                tracing::info!(refusal = refusal.as_str(), %detail, "payment refused");
                count_command("take_payment", "refused");
                let reply = PaymentRefused {
                    step: step.clone(),
                    booking_id,
                    refusal,
                    detail,
                };
                delivery.reply(&step, reply).await
            }
            Taken::Failed(detail) => {
                tracing::warn!(%detail, "payment failed transiently");
                count_command("take_payment", "failed");
                let reply = PaymentFailed {
                    step: step.clone(),
                    booking_id,
                    detail,
                };
                delivery.reply(&step, reply).await
            }
        }
    }

    /// Decides and records a payment, in this order: a closed booking is
    /// refused; a captured one answers with its captures; an inconsistent
    /// command is refused; miles are checked before the card is charged, so a
    /// card is never charged for a payment the miles cannot complete.
    async fn decide_take(
        &self,
        conn: &mut PgConnection,
        command: &TakePayment,
    ) -> Result<Taken, HandlerError> {
        let booking_id = command.booking_id;
        if ledger::is_closed(conn, booking_id).await? {
            return Ok(Taken::Refused(
                PaymentRefusal::PaymentClosed,
                format!("booking {booking_id} was refunded and takes no more payments"),
            ));
        }
        let captures: Vec<LedgerEntry> = ledger::entries_of_booking(conn, booking_id)
            .await?
            .into_iter()
            .filter(|entry| entry.kind == EntryKind::Capture)
            .collect();
        if !captures.is_empty() {
            tracing::info!("booking already captured; answering with its captures");
            count_command("take_payment", "already_taken");
            return Ok(Taken::AlreadyCaptured(captures));
        }
        let redeemed = match check_consistency(command) {
            Ok(redeemed) => redeemed,
            Err(detail) => return Ok(Taken::Refused(PaymentRefusal::Invalid, detail)),
        };

        if let Some(miles) = redeemed {
            miles::lock_account(conn, &command.customer_id).await?;
            let balance = miles::balance_of(conn, &command.customer_id).await?;
            if balance < miles {
                metrics::counter!("payments_total", "method" => "miles", "outcome" => "declined")
                    .increment(1);
                return Ok(Taken::Refused(
                    PaymentRefusal::InsufficientMiles,
                    format!("{miles} miles needed, {balance} available"),
                ));
            }
        }

        let mut approval = None;
        if let Some(card) = &command.card {
            let charge = Charge {
                booking_id,
                card_token: card.card_token,
                amount: card.amount,
            };
            let refused =
                |refusal: PaymentRefusal, detail: String| -> Result<Taken, HandlerError> {
                    metrics::counter!("payments_total", "method" => "card", "outcome" => "declined")
                    .increment(1);
                    Ok(Taken::Refused(refusal, detail))
                };
            match self.gateway.charge(conn, &charge).await {
                Ok(approved) => approval = Some(approved),
                Err(ChargeError::Declined(detail)) => {
                    return refused(PaymentRefusal::CardDeclined, detail)
                }
                Err(error @ ChargeError::InsufficientFunds) => {
                    return refused(PaymentRefusal::InsufficientFunds, error.to_string())
                }
                Err(error @ ChargeError::UnknownCard) => {
                    return refused(PaymentRefusal::UnknownCard, error.to_string())
                }
                Err(error @ ChargeError::Unavailable(_)) => {
                    metrics::counter!("payments_total", "method" => "card", "outcome" => "failed")
                        .increment(1);
                    return Ok(Taken::Failed(error.to_string()));
                }
                Err(ChargeError::Unexpected(error)) => return Err(HandlerError::Transient(error)),
            }
        }

        let mut captured = Vec::new();
        if let (Some(card), Some(approval)) = (&command.card, approval) {
            let entry = NewEntry {
                booking_id,
                customer_id: command.customer_id.clone(),
                kind: EntryKind::Capture,
                method: PaymentMethod::Card,
                amount: card.amount,
                miles: None,
                card_token: Some(card.card_token),
                gateway_reference: Some(approval.reference),
                refund_of: None,
            };
            captured.push(ledger::record(conn, entry).await.map_err(lost_race)?);
        }
        if let (Some(redemption), Some(miles)) = (&command.miles, redeemed) {
            let entry = NewEntry {
                booking_id,
                customer_id: command.customer_id.clone(),
                kind: EntryKind::Capture,
                method: PaymentMethod::Miles,
                amount: redemption.amount,
                miles: Some(redemption.miles),
                card_token: None,
                gateway_reference: None,
                refund_of: None,
            };
            captured.push(ledger::record(conn, entry).await.map_err(lost_race)?);
            miles::record_booking_entry(
                conn,
                &command.customer_id,
                -miles,
                "redemption",
                &format!("booking {booking_id}"),
                booking_id,
            )
            .await?;
        }
        for entry in &captured {
            metrics::counter!(
                "payments_total",
                "method" => ledger::method_str(entry.method),
                "outcome" => "captured"
            )
            .increment(1);
        }
        count_command("take_payment", "taken");
        tracing::info!(captures = captured.len(), "payment taken");
        Ok(Taken::Captured(captured))
    }

    #[tracing::instrument(
        skip_all,
        fields(booking_id = %command.booking_id, attempt = command.step.attempt),
    )]
    async fn refund(
        &self,
        delivery: &mut Delivery<'_>,
        command: Refund,
    ) -> Result<(), HandlerError> {
        let conn = &mut *delivery.conn;
        let booking_id = command.booking_id;
        ledger::lock_booking(conn, booking_id).await?;
        // Closed first and whatever was paid: a TakePayment arriving after
        // this refund must be refused, not captured.
        ledger::close(conn, booking_id, &command.reason).await?;

        let entries = ledger::entries_of_booking(conn, booking_id).await?;
        let refunded: HashSet<_> = entries.iter().filter_map(|entry| entry.refund_of).collect();
        let mut refunds: Vec<LedgerEntry> = entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::Refund)
            .cloned()
            .collect();
        let outstanding = entries.iter().filter(|entry| {
            entry.kind == EntryKind::Capture && !refunded.contains(&entry.payment_id)
        });
        let mut new_refunds = 0;
        for capture in outstanding {
            let refund = self.refund_capture(conn, capture, &command.reason).await?;
            metrics::counter!(
                "payments_total",
                "method" => ledger::method_str(refund.method),
                "outcome" => "refunded"
            )
            .increment(1);
            refunds.push(refund);
            new_refunds += 1;
        }
        count_command(
            "refund",
            if new_refunds > 0 {
                "refunded"
            } else {
                "nothing_to_refund"
            },
        );
        tracing::info!(
            new_refunds,
            refunds = refunds.len(),
            "booking payment refunded and closed"
        );
        let reply = PaymentRefunded {
            step: command.step.clone(),
            booking_id,
            refunds: refunds.iter().map(LedgerEntry::to_contract).collect(),
        };
        delivery.reply(&command.step, reply).await
    }

    async fn refund_capture(
        &self,
        conn: &mut PgConnection,
        capture: &LedgerEntry,
        reason: &str,
    ) -> Result<LedgerEntry, HandlerError> {
        let mut entry = NewEntry {
            booking_id: capture.booking_id,
            customer_id: capture.customer_id.clone(),
            kind: EntryKind::Refund,
            method: capture.method,
            amount: capture.amount,
            miles: capture.miles,
            card_token: capture.card_token,
            gateway_reference: None,
            refund_of: Some(capture.payment_id),
        };
        match capture.method {
            PaymentMethod::Card => {
                let Some(card_token) = capture.card_token else {
                    return Err(HandlerError::Permanent(anyhow::anyhow!(
                        "card capture {} has no card token",
                        capture.payment_id
                    )));
                };
                let refund = CardRefund {
                    booking_id: capture.booking_id,
                    card_token,
                    amount: capture.amount,
                    capture_reference: capture.gateway_reference.clone(),
                };
                // No reply can say "refund failed, try later": the runner
                // retries, then parks the command where an operator sees it.
                let approval = self
                    .gateway
                    .refund(conn, &refund)
                    .await
                    .map_err(|error| HandlerError::Transient(error.into()))?;
                entry.gateway_reference = Some(approval.reference);
                Ok(ledger::record(conn, entry).await.map_err(lost_race)?)
            }
            PaymentMethod::Miles => {
                let miles = capture
                    .miles
                    .and_then(|miles| i64::try_from(miles).ok())
                    .ok_or_else(|| {
                        HandlerError::Permanent(anyhow::anyhow!(
                            "miles capture {} has no miles",
                            capture.payment_id
                        ))
                    })?;
                let recorded = ledger::record(conn, entry).await.map_err(lost_race)?;
                miles::record_booking_entry(
                    conn,
                    &capture.customer_id,
                    miles,
                    "refund",
                    &format!("refund of booking {}: {reason}", capture.booking_id),
                    capture.booking_id,
                )
                .await?;
                Ok(recorded)
            }
        }
    }
}

/// Checks that a `TakePayment` adds up; returns the miles to redeem, if any.
/// The detail of an `Err` goes back to the saga as the refusal's detail.
pub fn check_consistency(command: &TakePayment) -> Result<Option<i64>, String> {
    if !miles::is_valid_customer_id(&command.customer_id) {
        return Err(
            "customer_id must be 1 to 64 characters of letters, digits, '-', '_' or '.'".to_owned(),
        );
    }
    let currency = command.total.currency();
    let mut paid = contracts::Money::zero(currency);
    let mut parts = 0;
    if let Some(card) = &command.card {
        if card.amount.is_zero() || card.amount.currency() != currency {
            return Err(format!(
                "the card part ({}) must be a positive amount in {currency}",
                card.amount
            ));
        }
        paid = card.amount;
        parts += 1;
    }
    let mut redeemed = None;
    if let Some(redemption) = &command.miles {
        if redemption.amount.is_zero() || redemption.amount.currency() != currency {
            return Err(format!(
                "the miles part ({}) must be a positive amount in {currency}",
                redemption.amount
            ));
        }
        // The exchange rate is payment's policy: a different count means the
        // two sides disagree on what the miles are worth.
        let expected = miles_for(&redemption.amount).map_err(|error| error.to_string())?;
        if redemption.miles != expected {
            return Err(format!(
                "{} is worth {expected} miles, not {}",
                redemption.amount, redemption.miles
            ));
        }
        let miles = i64::try_from(redemption.miles).map_err(|_| "too many miles".to_owned())?;
        paid = paid
            .checked_add(&redemption.amount)
            .map_err(|error| error.to_string())?;
        redeemed = Some(miles);
        parts += 1;
    }
    if parts == 0 {
        return Err("a payment needs a card part, a miles part or both".to_owned());
    }
    if paid != command.total {
        return Err(format!(
            "the parts add up to {paid}, not the total {}",
            command.total
        ));
    }
    Ok(redeemed)
}

/// Another delivery of the command captured (or refunded) first. This
/// transaction is spoilt by the violation; retried, the command finds the
/// winner's entries and answers with them.
fn lost_race(error: RecordError) -> HandlerError {
    match error {
        RecordError::AlreadyRecorded { .. } => HandlerError::Transient(
            anyhow::Error::new(error).context("a concurrent delivery wrote the ledger first"),
        ),
        RecordError::Unexpected(error) => HandlerError::Transient(error),
    }
}

fn count_command(command: &'static str, outcome: &'static str) {
    metrics::counter!("payment_commands_total", "command" => command, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use contracts::payment::{CardCharge, MilesRedemption};
    use contracts::saga::StepRef;
    use contracts::{Currency, Money};
    use uuid::Uuid;

    use super::*;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    fn command(total: &str, card: Option<&str>, miles: Option<(u64, &str)>) -> TakePayment {
        let booking_id = Uuid::now_v7();
        TakePayment {
            step: StepRef {
                saga_id: booking_id,
                step: "AuthorizeAndCapturePayment".to_owned(),
                attempt: 1,
            },
            booking_id,
            customer_id: "cust-1".to_owned(),
            total: usd(total),
            card: card.map(|amount| CardCharge {
                card_token: Uuid::now_v7(),
                amount: usd(amount),
            }),
            miles: miles.map(|(miles, amount)| MilesRedemption {
                miles,
                amount: usd(amount),
            }),
        }
    }

    #[test]
    fn a_card_payment_of_the_whole_total_is_consistent() {
        assert_eq!(
            check_consistency(&command("398.00", Some("398.00"), None)),
            Ok(None)
        );
    }

    #[test]
    fn a_mixed_payment_redeems_the_miles_its_part_is_worth() {
        let mixed = command("398.00", Some("298.00"), Some((10_000, "100.00")));
        assert_eq!(check_consistency(&mixed), Ok(Some(10_000)));
        let miles_only = command("398.00", None, Some((39_800, "398.00")));
        assert_eq!(check_consistency(&miles_only), Ok(Some(39_800)));
    }

    #[test]
    fn parts_that_do_not_add_up_to_the_total_are_invalid() {
        let error = check_consistency(&command("398.00", Some("300.00"), None)).unwrap_err();
        assert_eq!(
            error,
            "the parts add up to 300.00 USD, not the total 398.00 USD"
        );
        assert!(
            check_consistency(&command("398.00", Some("300.00"), Some((10_000, "100.00"))))
                .is_err()
        );
    }

    #[test]
    fn a_payment_without_parts_is_invalid() {
        let error = check_consistency(&command("398.00", None, None)).unwrap_err();
        assert!(error.contains("needs a card part"), "{error}");
    }

    #[test]
    fn parts_in_another_currency_or_of_nothing_are_invalid() {
        let mut euro_card = command("398.00", Some("398.00"), None);
        if let Some(card) = euro_card.card.as_mut() {
            card.amount = Money::parse("398.00", Currency::Eur).unwrap();
        }
        assert!(check_consistency(&euro_card)
            .unwrap_err()
            .contains("in USD"));
        let zero_card = command("100.00", Some("0.00"), Some((10_000, "100.00")));
        assert!(check_consistency(&zero_card).is_err());
    }

    #[test]
    fn miles_that_disagree_with_the_exchange_rate_are_invalid() {
        let cheap = command("398.00", Some("298.00"), Some((1, "100.00")));
        assert_eq!(
            check_consistency(&cheap).unwrap_err(),
            "100.00 USD is worth 10000 miles, not 1"
        );
    }

    #[test]
    fn a_malformed_customer_id_is_invalid() {
        let mut anonymous = command("10.00", Some("10.00"), None);
        anonymous.customer_id = String::new();
        assert!(check_consistency(&anonymous).is_err());
    }
}
