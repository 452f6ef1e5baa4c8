//! Card tokenization: `POST /cards` exchanges a card for a token the saga can
//! carry. Card numbers never leave this module and the gateway: not in
//! messages, not in logs ([`CardNumber`]'s `Debug` shows only the last four
//! digits), not in the payment ledger.
//!
//! In production the token would come from the card processor (typically
//! straight from the customer's browser) and payment would never see the
//! number at all. Here the simulated gateway's vault plays the processor.

use std::fmt;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate, Utc};
use contracts::http::payment::{CardRequest, CardToken};
use service_kit::auth::Caller;
use service_kit::{ApiError, Json};
use uuid::Uuid;

use crate::gateway::{TokenizeError, TEST_CARDS};
use crate::AppState;

/// A card number that passed the format and Luhn checks: 12 to 19 ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Parses what a customer types. Spaces and dashes are accepted as group
    /// separators (`4242 4242 4242 4242`, `4242-4242-…`) because card forms
    /// and printed cards use them; anything else that is not a digit is refused.
    pub fn parse(input: &str) -> Result<Self, CardError> {
        let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::MalformedNumber);
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(CardError::NumberLength(digits.len()));
        }
        if !luhn_valid(&digits) {
            return Err(CardError::LuhnCheck);
        }
        Ok(Self(digits))
    }

    /// The digits, for the gateway's eyes only.
    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        // At least 12 ASCII digits by construction, so the slice is in bounds.
        &self.0[self.0.len() - 4..]
    }

    /// The card brand from the issuer prefix (the few the simulator knows).
    pub fn brand(&self) -> &'static str {
        let prefix = |n: usize| self.0.get(..n).and_then(|p| p.parse::<u32>().ok());
        match (prefix(1), prefix(2), prefix(4)) {
            (Some(4), _, _) => "visa",
            (_, Some(34 | 37), _) => "amex",
            (_, Some(51..=55), _) | (_, _, Some(2221..=2720)) => "mastercard",
            (_, Some(65), _) | (_, _, Some(6011)) => "discover",
            _ => "unknown",
        }
    }
}

/// Never prints the number: logs and panics show only its last four digits.
impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(…{})", self.last4())
    }
}

/// The Luhn (mod 10) checksum every card number carries in its last digit.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (position, byte) in digits.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return false;
        }
        let mut digit = u32::from(byte - b'0');
        if position % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// A card's expiry month; the card is valid through the end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    year: i32,
    month: u32,
}

impl Expiry {
    /// Parses `MM/YY` (two digits each, as printed on cards; `20YY`).
    pub fn parse(input: &str) -> Result<Self, CardError> {
        let malformed = || CardError::MalformedExpiry(input.to_owned());
        let (month, year) = input.split_once('/').ok_or_else(malformed)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(month) || !two_digits(year) {
            return Err(malformed());
        }
        let month: u32 = month.parse().map_err(|_| malformed())?;
        let year: i32 = year.parse().map_err(|_| malformed())?;
        if !(1..=12).contains(&month) {
            return Err(malformed());
        }
        Ok(Self {
            year: 2000 + year,
            month,
        })
    }

    /// Whether the card can still be used on `today`.
    pub fn is_valid_on(&self, today: NaiveDate) -> bool {
        (self.year, self.month) >= (today.year(), today.month())
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}", self.month, self.year % 100)
    }
}

/// The card verification code. Checked at tokenization, never stored, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(String);

impl Cvc {
    /// 3 digits, or 4 for American Express (printed on the front).
    pub fn parse(input: &str, brand: &str) -> Result<Self, CardError> {
        let expected = if brand == "amex" { 4 } else { 3 };
        let digits = input.bytes().all(|b| b.is_ascii_digit());
        if !digits || !(3..=4).contains(&input.len()) {
            return Err(CardError::MalformedCvc);
        }
        if input.len() != expected {
            return Err(CardError::CvcLength {
                brand: brand.to_owned(),
                expected,
            });
        }
        Ok(Self(input.to_owned()))
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// A card as the customer gave it, validated.
#[derive(Debug, Clone)]
pub struct CardDetails {
    pub number: CardNumber,
    pub expiry: Expiry,
    pub cvc: Cvc,
}

/// Why a card was refused before reaching the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error(
        "the card number must contain only digits (spaces and dashes between groups are allowed)"
    )]
    MalformedNumber,
    #[error("the card number must have 12 to 19 digits, got {0}")]
    NumberLength(usize),
    #[error("the card number fails its check digit (Luhn): probably a typo")]
    LuhnCheck,
    #[error("expiry must be MM/YY with a month from 01 to 12, got {0:?}")]
    MalformedExpiry(String),
    #[error("the card expired at the end of {0}")]
    Expired(Expiry),
    #[error("the CVC must be 3 or 4 digits")]
    MalformedCvc,
    #[error("{brand} cards have a {expected}-digit CVC")]
    CvcLength { brand: String, expected: usize },
}

impl CardError {
    fn field(&self) -> &'static str {
        match self {
            Self::MalformedNumber | Self::NumberLength(_) | Self::LuhnCheck => "number",
            Self::MalformedExpiry(_) | Self::Expired(_) => "expiry",
            Self::MalformedCvc | Self::CvcLength { .. } => "cvc",
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            Self::MalformedNumber | Self::NumberLength(_) | Self::LuhnCheck => {
                "invalid-card-number"
            }
            Self::MalformedExpiry(_) => "invalid-expiry",
            Self::Expired(_) => "card-expired",
            Self::MalformedCvc | Self::CvcLength { .. } => "invalid-cvc",
        }
    }
}

impl From<CardError> for ApiError {
    fn from(error: CardError) -> Self {
        ApiError::unprocessable(error.to_string())
            .with_type(error.problem_type())
            .with_extension("field", error.field())
    }
}

/// Validates a card as typed, on `today`: number, then expiry, then CVC.
pub fn validate(request: &CardRequest, today: NaiveDate) -> Result<CardDetails, CardError> {
    let number = CardNumber::parse(&request.number)?;
    let expiry = Expiry::parse(request.expiry.trim())?;
    if !expiry.is_valid_on(today) {
        return Err(CardError::Expired(expiry));
    }
    let cvc = Cvc::parse(request.cvc.trim(), number.brand())?;
    Ok(CardDetails {
        number,
        expiry,
        cvc,
    })
}

/// What the gateway made of a card; answered as a [`CardToken`].
#[derive(Debug)]
pub struct TokenizedCard {
    pub card_token: Uuid,
    pub brand: &'static str,
    pub last4: String,
    pub expiry: String,
}

impl From<TokenizedCard> for CardToken {
    fn from(card: TokenizedCard) -> Self {
        Self {
            card_token: card.card_token,
            brand: card.brand.to_owned(),
            last4: card.last4,
            expiry: card.expiry,
        }
    }
}

/// `POST /cards`: a card in, a token out.
#[tracing::instrument(skip_all)]
pub async fn tokenize(
    State(state): State<AppState>,
    _caller: Caller,
    Json(request): Json<CardRequest>,
) -> Result<(StatusCode, Json<CardToken>), ApiError> {
    let card = validate(&request, Utc::now().date_naive()).inspect_err(|error| {
        metrics::counter!("card_tokenizations_total", "outcome" => "invalid").increment(1);
        tracing::info!(field = error.field(), "card refused at validation");
    })?;
    let mut conn = state.pool.acquire().await?;
    match state.gateway.tokenize(&mut conn, &card).await {
        Ok(tokenized) => {
            metrics::counter!("card_tokenizations_total", "outcome" => "tokenized").increment(1);
            tracing::info!(card_token = %tokenized.card_token, brand = tokenized.brand, "card tokenized");
            Ok((StatusCode::CREATED, Json(tokenized.into())))
        }
        Err(TokenizeError::UnknownCard) => {
            metrics::counter!("card_tokenizations_total", "outcome" => "unknown_card").increment(1);
            let test_cards: Vec<_> = TEST_CARDS
                .iter()
                .map(|card| serde_json::json!({"number": card.number, "behaviour": card.behaviour}))
                .collect();
            Err(ApiError::unprocessable(format!(
                "the simulated card gateway accepts only its test cards: {}",
                TEST_CARDS
                    .iter()
                    .map(|card| format!("{} ({})", card.number, card.behaviour))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_type("unknown-card")
            .with_extension("field", "number")
            .with_extension("test_cards", test_cards))
        }
        Err(TokenizeError::Unexpected(error)) => Err(ApiError::internal(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn request(number: &str, expiry: &str, cvc: &str) -> CardRequest {
        CardRequest {
            number: number.to_owned(),
            expiry: expiry.to_owned(),
            cvc: cvc.to_owned(),
        }
    }

    #[test]
    fn the_luhn_check_accepts_real_test_numbers_and_catches_typos() {
        for valid in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000119",
            "378282246310005",
            "5555555555554444",
            "79927398713",
        ] {
            assert!(luhn_valid(valid), "{valid}");
        }
        for invalid in [
            "4242424242424241",
            "4242424242424224",
            "79927398710",
            "",
            "42a2",
        ] {
            assert!(!luhn_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn card_numbers_allow_spaces_and_dashes_between_groups_only() {
        let spaced = CardNumber::parse("4242 4242 4242 4242").unwrap();
        let dashed = CardNumber::parse("4242-4242-4242-4242").unwrap();
        assert_eq!(spaced, dashed);
        assert_eq!(spaced.digits(), "4242424242424242");
        assert_eq!(
            CardNumber::parse("4242.4242.4242.4242"),
            Err(CardError::MalformedNumber)
        );
        assert_eq!(CardNumber::parse(""), Err(CardError::MalformedNumber));
        assert_eq!(
            CardNumber::parse("٤٢٤٢٤٢٤٢٤٢٤٢"),
            Err(CardError::MalformedNumber)
        );
    }

    #[test]
    fn card_numbers_have_twelve_to_nineteen_digits() {
        assert_eq!(
            CardNumber::parse("42424242424"),
            Err(CardError::NumberLength(11))
        );
        assert_eq!(
            CardNumber::parse("42424242424242424242"),
            Err(CardError::NumberLength(20))
        );
        assert_eq!(
            CardNumber::parse("4242424242424241"),
            Err(CardError::LuhnCheck)
        );
    }

    #[test]
    fn a_card_number_never_prints_more_than_its_last_four_digits() {
        let number = CardNumber::parse("4242424242424242").unwrap();
        assert_eq!(format!("{number:?}"), "CardNumber(…4242)");
        let card = validate(
            &request("4242424242424242", "12/99", "123"),
            day(2026, 1, 1),
        )
        .unwrap();
        let printed = format!("{card:?}");
        assert!(
            !printed.contains("424242424242") && !printed.contains("123"),
            "{printed}"
        );
    }

    #[test]
    fn brands_come_from_the_issuer_prefix() {
        let brand = |n: &str| CardNumber::parse(n).unwrap().brand();
        assert_eq!(brand("4242424242424242"), "visa");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("6011111111111117"), "discover");
    }

    #[test]
    fn an_expiry_is_mm_slash_yy_and_valid_through_its_month() {
        let expiry = Expiry::parse("03/27").unwrap();
        assert_eq!(expiry.to_string(), "03/27");
        assert!(expiry.is_valid_on(day(2027, 3, 31)));
        assert!(!expiry.is_valid_on(day(2027, 4, 1)));
        assert!(expiry.is_valid_on(day(2026, 12, 31)));
        for malformed in [
            "3/27", "13/27", "00/27", "03/2027", "0327", "ab/cd", "03-27", "",
        ] {
            assert!(
                matches!(Expiry::parse(malformed), Err(CardError::MalformedExpiry(_))),
                "{malformed}"
            );
        }
    }

    #[test]
    fn the_cvc_length_depends_on_the_brand() {
        assert!(Cvc::parse("123", "visa").is_ok());
        assert!(Cvc::parse("1234", "amex").is_ok());
        assert!(matches!(
            Cvc::parse("1234", "visa"),
            Err(CardError::CvcLength { .. })
        ));
        assert_eq!(Cvc::parse("12", "visa"), Err(CardError::MalformedCvc));
        assert_eq!(Cvc::parse("12a", "visa"), Err(CardError::MalformedCvc));
        assert_eq!(Cvc::parse("12345", "amex"), Err(CardError::MalformedCvc));
    }

    #[test]
    fn validation_reports_the_first_invalid_field() {
        let today = day(2026, 6, 15);
        let error = validate(&request("4242", "01/20", "1"), today).unwrap_err();
        assert_eq!(error.field(), "number");
        let error = validate(&request("4242424242424242", "05/26", "1"), today).unwrap_err();
        assert_eq!(error, CardError::Expired(Expiry::parse("05/26").unwrap()));
        assert_eq!(error.problem_type(), "card-expired");
        let error = validate(&request("4242424242424242", "06/26", "1"), today).unwrap_err();
        assert_eq!(error.field(), "cvc");
    }
}
