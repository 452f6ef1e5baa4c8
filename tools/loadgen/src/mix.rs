//! The traffic mix: which kind of booking each request in the sequence is.
//! Deterministic, so two runs at the same rate send the same traffic.

use serde::Serialize;

/// The test cards payment's gateway simulator knows.
/// The CVC every generated card carries: distinctive, so a scan of the
/// services' logs for it means something.
pub const CVC: &str = "737";
/// Every card number the mix sends, for scans that must never find one.
pub const ALL_CARDS: [&str; 4] = [
    CARD_APPROVED,
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_TRANSIENT_THEN_APPROVED,
];
pub const CARD_APPROVED: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";
/// Fails transiently twice, then approves: exercises the saga's retries.
pub const CARD_TRANSIENT_THEN_APPROVED: &str = "4000000000000119";

/// Miles offered alongside a card: worth a part of the fare, not all of it.
pub const MILES_OFFERED: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Scenario {
    /// Approved card: should confirm.
    Card,
    /// Approved card plus miles: should confirm, paid by both.
    CardAndMiles,
    /// A card that fails twice then approves: should confirm after retries.
    TransientCard,
    /// Declined card: should fail and be compensated.
    Declined,
    /// Insufficient funds: should fail and be compensated.
    InsufficientFunds,
    /// A seat on a small flight: the first few confirm, the rest are sold out.
    SmallFlight,
    /// Confirms, then the customer cancels: seats released, money refunded.
    CancelAfterConfirm,
}

impl Scenario {
    pub fn label(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::CardAndMiles => "card + miles",
            Self::TransientCard => "card, transient failures",
            Self::Declined => "declined card",
            Self::InsufficientFunds => "insufficient funds",
            Self::SmallFlight => "small flight (sells out)",
            Self::CancelAfterConfirm => "cancel after confirmation",
        }
    }

    pub fn card_number(self) -> &'static str {
        match self {
            Self::Declined => CARD_DECLINED,
            Self::InsufficientFunds => CARD_INSUFFICIENT_FUNDS,
            Self::TransientCard => CARD_TRANSIENT_THEN_APPROVED,
            _ => CARD_APPROVED,
        }
    }

    pub fn miles(self) -> u64 {
        if self == Self::CardAndMiles {
            MILES_OFFERED
        } else {
            0
        }
    }
}

/// Twenty requests: 17 that should succeed (85%), 2 declined (10%), and one
/// (5%) that is a sold-out attempt or a cancellation, alternately. Spread out
/// so no burst is all of one kind.
const PATTERN: [Scenario; 20] = {
    use Scenario::*;
    [
        Card,
        Card,
        CardAndMiles,
        Card,
        Declined,
        Card,
        Card,
        TransientCard,
        Card,
        CardAndMiles,
        SmallFlight, // or CancelAfterConfirm, see scenario_for
        Card,
        Card,
        InsufficientFunds,
        Card,
        CardAndMiles,
        Card,
        Card,
        Card,
        Card,
    ]
};

pub fn scenario_for(sequence: u64) -> Scenario {
    let index = (sequence % PATTERN.len() as u64) as usize;
    match PATTERN[index] {
        Scenario::SmallFlight if (sequence / PATTERN.len() as u64) % 2 == 1 => {
            Scenario::CancelAfterConfirm
        }
        scenario => scenario,
    }
}

/// One passenger mostly, two every fourth booking.
pub fn passengers_for(sequence: u64) -> usize {
    if sequence.is_multiple_of(4) {
        2
    } else {
        1
    }
}

/// Email only, email and phone, phone only, in turn: every notification
/// channel combination the confirmation check knows.
pub fn contact_for(sequence: u64) -> (bool, bool) {
    match sequence % 3 {
        0 => (true, false),
        1 => (true, true),
        _ => (false, true),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_mix_is_85_percent_success_10_declined_5_sold_out_or_cancelled() {
        let mut counts: HashMap<Scenario, u64> = HashMap::new();
        for sequence in 0..4000 {
            *counts.entry(scenario_for(sequence)).or_default() += 1;
        }
        let count = |scenario| counts.get(&scenario).copied().unwrap_or(0);
        let succeeding =
            count(Scenario::Card) + count(Scenario::CardAndMiles) + count(Scenario::TransientCard);
        assert_eq!(succeeding, 3400);
        assert_eq!(
            count(Scenario::Declined) + count(Scenario::InsufficientFunds),
            400
        );
        assert_eq!(count(Scenario::SmallFlight), 100);
        assert_eq!(count(Scenario::CancelAfterConfirm), 100);
    }

    #[test]
    fn every_contact_has_at_least_one_channel() {
        for sequence in 0..6 {
            let (email, phone) = contact_for(sequence);
            assert!(email || phone);
        }
    }
}
