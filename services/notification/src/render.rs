//! What a message says: pure functions from a command to a subject and body.
//!
//! Everything comes from the command itself (contracts::notification says so):
//! nothing here asks another service. Times are shown in UTC, because the
//! command carries no airport time zone and a wrong local time is worse than
//! an explicit UTC one. Free text from the command (names, reasons) is cleaned
//! of control characters and bounded, so it cannot reshape an SMS or a header.

use contracts::notification::{BookingSummary, Channel, NotificationKind, SendNotification};
use uuid::Uuid;

/// The longest a free-text field (a reason, a name) may run in a message.
const MAX_FIELD_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The message for `channel`. `confirmation_sent` says whether this booking
/// already has a confirmation on record; a cancellation then says it no
/// longer holds, since a sent message cannot be unsent.
pub fn render(command: &SendNotification, channel: Channel, confirmation_sent: bool) -> Rendered {
    let booking = &command.booking;
    let reason = command
        .reason
        .as_deref()
        .map(clean)
        .filter(|reason| !reason.is_empty());
    let subject = subject(command.kind, booking);
    let body = match channel {
        Channel::Email => email_body(
            command.kind,
            command.booking_id,
            booking,
            reason.as_deref(),
            confirmation_sent,
        ),
        Channel::Sms => sms_body(
            command.kind,
            command.booking_id,
            booking,
            reason.as_deref(),
            confirmation_sent,
        ),
    };
    Rendered { subject, body }
}

fn subject(kind: NotificationKind, booking: &BookingSummary) -> String {
    let what = match kind {
        NotificationKind::Confirmation => "Booking confirmed",
        NotificationKind::Cancellation => "Booking cancelled",
        NotificationKind::Correction => "Correction to your booking",
    };
    format!(
        "{what}: {} {} to {} on {}",
        clean(&booking.flight.flight_number),
        clean(&booking.flight.origin),
        clean(&booking.flight.destination),
        booking.flight.departure.format("%Y-%m-%d"),
    )
}

fn email_body(
    kind: NotificationKind,
    booking_id: Uuid,
    booking: &BookingSummary,
    reason: Option<&str>,
    confirmation_sent: bool,
) -> String {
    let mut body = String::new();
    match kind {
        NotificationKind::Confirmation => {
            body.push_str("Your booking is confirmed.\n\n");
        }
        NotificationKind::Cancellation => {
            body.push_str("Your booking has been cancelled.\n");
            body.push_str(&format!("Reason: {}\n", reason.unwrap_or("not given")));
            if confirmation_sent {
                body.push_str(
                    "The confirmation we sent you earlier for this booking no longer holds.\n",
                );
            }
            body.push('\n');
        }
        NotificationKind::Correction => {
            body.push_str(
                "An earlier message we sent you about this booking was wrong. \
                 Please disregard it: this is what is right now.\n",
            );
            body.push_str(&format!("Reason: {}\n\n", reason.unwrap_or("not given")));
        }
    }
    body.push_str(&format!("Booking: {booking_id}\n"));
    body.push_str(&format!(
        "Flight: {} from {} to {}\n",
        clean(&booking.flight.flight_number),
        clean(&booking.flight.origin),
        clean(&booking.flight.destination),
    ));
    body.push_str(&format!(
        "Departure: {}\n",
        booking.flight.departure.format("%Y-%m-%d %H:%M UTC")
    ));
    body.push_str(&format!("Passengers: {}\n", passengers(booking)));
    body.push_str(&format!("Total: {}\n", booking.total));
    body
}

fn sms_body(
    kind: NotificationKind,
    booking_id: Uuid,
    booking: &BookingSummary,
    reason: Option<&str>,
    confirmation_sent: bool,
) -> String {
    // A short reference the customer can quote; the full id is in the email.
    let reference: String = booking_id.simple().to_string().chars().take(8).collect();
    let headline = match kind {
        NotificationKind::Confirmation => format!("Contrail: booking {reference} confirmed."),
        NotificationKind::Cancellation => {
            let mut headline = format!(
                "Contrail: booking {reference} cancelled ({}).",
                reason.unwrap_or("no reason given")
            );
            if confirmation_sent {
                headline.push_str(" Your earlier confirmation no longer holds.");
            }
            headline
        }
        NotificationKind::Correction => format!(
            "Contrail: correction for booking {reference}: an earlier message was wrong ({}). Now:",
            reason.unwrap_or("no reason given")
        ),
    };
    format!(
        "{headline} {} {}-{} dep {}, {}, total {}.",
        clean(&booking.flight.flight_number),
        clean(&booking.flight.origin),
        clean(&booking.flight.destination),
        booking.flight.departure.format("%Y-%m-%d %H:%M UTC"),
        passengers(booking),
        booking.total,
    )
}

fn passengers(booking: &BookingSummary) -> String {
    if booking.passengers.is_empty() {
        return "none listed".to_owned();
    }
    booking
        .passengers
        .iter()
        .map(|p| clean(&format!("{} {}", p.first_name, p.last_name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Control characters become spaces, runs of spaces collapse, and the text
/// is bounded to [`MAX_FIELD_CHARS`].
fn clean(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= MAX_FIELD_CHARS {
        joined
    } else {
        let mut cut: String = joined.chars().take(MAX_FIELD_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use contracts::notification::{Contact, FlightSummary, Passenger};
    use contracts::saga::StepRef;
    use contracts::{Currency, Money};

    use super::*;

    fn command(kind: NotificationKind, reason: Option<&str>) -> SendNotification {
        SendNotification {
            step: StepRef {
                saga_id: Uuid::nil(),
                step: "SendConfirmation".to_owned(),
                attempt: 1,
            },
            booking_id: Uuid::from_u128(0x0193_a0c2_7d1e_7000_8000_0000_0000_b001),
            kind,
            contact: Contact {
                email: Some("jane@example.com".to_owned()),
                phone: Some("+821012341234".to_owned()),
            },
            booking: BookingSummary {
                customer_id: "c-1".to_owned(),
                flight: FlightSummary {
                    flight_id: Uuid::nil(),
                    flight_number: "CT123".to_owned(),
                    origin: "ICN".to_owned(),
                    destination: "NRT".to_owned(),
                    departure: Utc.with_ymd_and_hms(2026, 11, 22, 2, 10, 0).unwrap(),
                },
                passengers: vec![
                    Passenger {
                        first_name: "Jane".to_owned(),
                        last_name: "Doe".to_owned(),
                    },
                    Passenger {
                        first_name: "John".to_owned(),
                        last_name: "Doe".to_owned(),
                    },
                ],
                total: Money::parse("240.00", Currency::Usd).unwrap(),
            },
            reason: reason.map(str::to_owned),
        }
    }

    fn assert_has_booking_details(text: &str) {
        for expected in [
            "CT123",
            "ICN",
            "NRT",
            "2026-11-22 02:10 UTC",
            "Jane Doe, John Doe",
            "240.00 USD",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn a_confirmation_names_flight_route_departure_passengers_and_total_on_both_channels() {
        let command = command(NotificationKind::Confirmation, None);
        let email = render(&command, Channel::Email, false);
        assert_eq!(
            email.subject,
            "Booking confirmed: CT123 ICN to NRT on 2026-11-22"
        );
        assert!(email.body.starts_with("Your booking is confirmed."));
        assert!(email.body.contains(&command.booking_id.to_string()));
        assert_has_booking_details(&email.body);
        let sms = render(&command, Channel::Sms, false);
        assert!(sms
            .body
            .starts_with("Contrail: booking 0193a0c2 confirmed."));
        assert_has_booking_details(&sms.body);
    }

    #[test]
    fn a_cancellation_gives_its_reason_and_the_booking_details() {
        let command = command(NotificationKind::Cancellation, Some("flight cancelled"));
        for channel in [Channel::Email, Channel::Sms] {
            let message = render(&command, channel, false);
            assert!(message.subject.starts_with("Booking cancelled:"));
            assert!(
                message.body.contains("flight cancelled"),
                "{}",
                message.body
            );
            assert!(
                !message.body.contains("no longer holds"),
                "{}",
                message.body
            );
            assert_has_booking_details(&message.body);
        }
    }

    #[test]
    fn a_cancellation_after_a_confirmation_says_the_confirmation_no_longer_holds() {
        let command = command(
            NotificationKind::Cancellation,
            Some("requested by the customer"),
        );
        for channel in [Channel::Email, Channel::Sms] {
            let message = render(&command, channel, true);
            assert!(message.body.contains("no longer holds"), "{}", message.body);
        }
    }

    #[test]
    fn a_correction_says_an_earlier_message_was_wrong_and_what_is_right_now() {
        let command = command(
            NotificationKind::Correction,
            Some("the total was misquoted"),
        );
        let email = render(&command, Channel::Email, true);
        assert!(email.subject.starts_with("Correction to your booking:"));
        assert!(email
            .body
            .contains("An earlier message we sent you about this booking was wrong"));
        assert!(email.body.contains("Reason: the total was misquoted"));
        assert_has_booking_details(&email.body);
        let sms = render(&command, Channel::Sms, true);
        assert!(sms
            .body
            .contains("an earlier message was wrong (the total was misquoted)"));
        assert_has_booking_details(&sms.body);
    }

    #[test]
    fn a_missing_reason_is_said_to_be_missing() {
        let command = command(NotificationKind::Cancellation, Some("  \n "));
        let email = render(&command, Channel::Email, false);
        assert!(email.body.contains("Reason: not given"), "{}", email.body);
    }

    #[test]
    fn free_text_cannot_break_lines_or_run_unbounded() {
        let long = format!("line one\r\nline two {}", "x".repeat(500));
        let command = command(NotificationKind::Cancellation, Some(&long));
        let sms = render(&command, Channel::Sms, false);
        assert!(!sms.body.contains('\n'), "{}", sms.body);
        assert!(sms.body.contains("line one line two"));
        assert!(sms.body.chars().count() < 500, "{}", sms.body.len());
    }

    #[test]
    fn a_booking_without_passengers_still_renders() {
        let mut command = command(NotificationKind::Confirmation, None);
        command.booking.passengers.clear();
        let email = render(&command, Channel::Email, false);
        assert!(email.body.contains("Passengers: none listed"));
    }
}
