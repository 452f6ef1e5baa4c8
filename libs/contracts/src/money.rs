//! Money as every message carries it: an exact decimal amount and an ISO 4217
//! currency.
//!
//! On the wire a [`Money`] is `{"amount": "199.00", "currency": "USD"}`. The
//! amount is always a decimal *string*, rendered with exactly as many decimal
//! places as the currency has minor units (`"199.00"` for USD, `"1000"` for
//! JPY): a JSON number would pass through binary floating point somewhere
//! between two services, and `0.1 + 0.2` is not a price.
//!
//! A `Money` is valid by construction: non-negative, in a supported currency,
//! and no finer than the currency's minor unit (`199.001 USD` does not exist).
//! Deserialization applies the same checks, so a message that carries money
//! carries valid money. Arithmetic is checked: mixing currencies, going below
//! zero or overflowing is an error, never a panic and never a silent rounding.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

/// The currencies Contrail prices in, with their ISO 4217 codes.
///
/// Deliberately a small, explicit set: supporting a currency means knowing its
/// minor unit, and a code we have never heard of is a client error, not a
/// currency with a guessed number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    /// United States dollar, 2 decimals.
    Usd,
    /// Euro, 2 decimals.
    Eur,
    /// Pound sterling, 2 decimals.
    Gbp,
    /// Japanese yen, no decimals.
    Jpy,
    /// South Korean won, no decimals.
    Krw,
    /// Kuwaiti dinar, 3 decimals.
    Kwd,
}

impl Currency {
    /// Every supported currency.
    pub const ALL: [Currency; 6] = [
        Currency::Usd,
        Currency::Eur,
        Currency::Gbp,
        Currency::Jpy,
        Currency::Krw,
        Currency::Kwd,
    ];

    /// The ISO 4217 alphabetic code, e.g. `"USD"`.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Jpy => "JPY",
            Currency::Krw => "KRW",
            Currency::Kwd => "KWD",
        }
    }

    /// How many decimal places an amount in this currency has (ISO 4217 minor unit).
    pub const fn minor_units(self) -> u32 {
        match self {
            Currency::Usd | Currency::Eur | Currency::Gbp => 2,
            Currency::Jpy | Currency::Krw => 0,
            Currency::Kwd => 3,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Parses an ISO 4217 code. Codes are upper case, as the standard writes
    /// them; `"usd"` is refused rather than guessed at.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|currency| currency.code() == code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CurrencyVisitor;

        impl Visitor<'_> for CurrencyVisitor {
            type Value = Currency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 4217 currency code such as \"USD\"")
            }

            fn visit_str<E: de::Error>(self, code: &str) -> Result<Currency, E> {
                code.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(CurrencyVisitor)
    }
}

fn supported_codes() -> String {
    Currency::ALL.map(Currency::code).join(", ")
}

/// Why an amount of money could not be made or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}`, expected one of {supported}", supported = supported_codes())]
    UnknownCurrency(String),
    #[error("`{0}` is not a decimal amount such as \"199.00\"")]
    Malformed(String),
    #[error("amount must not be negative, got {0}")]
    Negative(Decimal),
    #[error("{currency} amounts have at most {} decimal places, got {amount}", currency.minor_units())]
    TooPrecise { amount: Decimal, currency: Currency },
    #[error("cannot combine {left} and {right} amounts")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount is out of range")]
    Overflow,
}

/// A non-negative amount in one currency, exact to the currency's minor unit.
///
/// Equality and ordering are by value within a currency: `Money` implements
/// [`PartialOrd`] so that amounts in different currencies are *unordered*
/// (`partial_cmp` returns `None`, and `<`, `>` are both false); use
/// [`Money::checked_cmp`] where a mismatch must be an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Always rescaled to `currency.minor_units()` decimal places.
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount in `currency`: refused if negative or finer than the
    /// currency's minor unit. Trailing zeros do not count: `199.500` USD is
    /// `199.50 USD`, while `199.001` USD is an error, because rounding a price
    /// silently is how money goes missing.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_zero() {
            return Ok(Self::zero(currency));
        }
        if amount.is_sign_negative() {
            return Err(MoneyError::Negative(amount));
        }
        let scale = currency.minor_units();
        if amount.normalize().scale() > scale {
            return Err(MoneyError::TooPrecise { amount, currency });
        }
        let mut amount = amount;
        amount.rescale(scale);
        // `rescale` saturates instead of failing when the mantissa has no room left.
        if amount.scale() != scale {
            return Err(MoneyError::Overflow);
        }
        Ok(Self { amount, currency })
    }

    /// Parses a wire amount such as `"199.00"` or `"199.5"`: ASCII digits with
    /// an optional fractional part. Signs, exponents, separators and
    /// whitespace are refused, so that an amount has exactly one spelling
    /// family and nothing is guessed.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(amount.to_owned());
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (digits, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || !fraction.is_none_or(all_digits) {
            return Err(malformed());
        }
        let value = Decimal::from_str_exact(amount).map_err(|_| MoneyError::Overflow)?;
        if negative && !value.is_zero() {
            return Err(MoneyError::Negative(value));
        }
        Self::new(value, currency)
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: Decimal::new(0, currency.minor_units()),
            currency,
        }
    }

    /// The amount, with exactly `currency().minor_units()` decimal places.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// `self + other`, in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(sum, currency)
    }

    /// `self - other`, in the same currency; an error if it would go below zero.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(difference, currency)
    }

    /// `self × n`, e.g. a per-seat fare times the number of seats.
    pub fn times(&self, n: u32) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(Decimal::from(n))
            .ok_or(MoneyError::Overflow)?;
        Money::new(product, self.currency)
    }

    /// Compares two amounts of the same currency; an error across currencies.
    pub fn checked_cmp(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    fn same_currency(&self, other: &Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl PartialOrd for Money {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.checked_cmp(other).ok()
    }
}

/// `199.00 USD`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut money = serializer.serialize_struct("Money", 2)?;
        // `amount` always carries `minor_units` decimal places, so this renders "199.00".
        money.serialize_field("amount", &self.amount.to_string())?;
        money.serialize_field("currency", &self.currency)?;
        money.end()
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The wire shape, before validation. Unknown fields are ignored
        /// (tolerant reader), missing ones are errors.
        #[derive(Deserialize)]
        #[serde(rename = "Money")]
        struct Wire {
            amount: AmountText,
            currency: Currency,
        }

        let wire = Wire::deserialize(deserializer)?;
        Money::parse(&wire.amount.0, wire.currency).map_err(de::Error::custom)
    }
}

/// The amount's text. A JSON number is refused with a message that says what
/// to send instead, rather than serde's generic "invalid type".
struct AmountText(String);

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;

        impl Visitor<'_> for AmountVisitor {
            type Value = AmountText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the amount as a decimal string such as \"199.00\", not a number")
            }

            fn visit_str<E: de::Error>(self, amount: &str) -> Result<AmountText, E> {
                Ok(AmountText(amount.to_owned()))
            }
        }

        deserializer.deserialize_str(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    fn from_json(value: serde_json::Value) -> Result<Money, String> {
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    #[test]
    fn amounts_render_with_the_currencys_minor_units() {
        assert_eq!(usd("199.5").to_string(), "199.50 USD");
        assert_eq!(usd("199").to_string(), "199.00 USD");
        assert_eq!(usd("199.500").to_string(), "199.50 USD");
        let yen = Money::parse("1000", Currency::Jpy).unwrap();
        assert_eq!(yen.to_string(), "1000 JPY");
        let dinar = Money::parse("1.5", Currency::Kwd).unwrap();
        assert_eq!(dinar.to_string(), "1.500 KWD");
        assert_eq!(Money::zero(Currency::Eur).to_string(), "0.00 EUR");
    }

    #[test]
    fn money_serializes_the_amount_as_a_string() {
        let value = serde_json::to_value(usd("199")).unwrap();
        assert_eq!(value, json!({ "amount": "199.00", "currency": "USD" }));
        let won = serde_json::to_value(Money::parse("15000", Currency::Krw).unwrap()).unwrap();
        assert_eq!(won, json!({ "amount": "15000", "currency": "KRW" }));
    }

    #[test]
    fn a_json_round_trip_keeps_the_exact_string() {
        for (text, currency) in [
            (r#"{"amount":"199.00","currency":"USD"}"#, "USD"),
            (r#"{"amount":"0.01","currency":"EUR"}"#, "EUR"),
            (r#"{"amount":"1000","currency":"JPY"}"#, "JPY"),
            (r#"{"amount":"0.125","currency":"KWD"}"#, "KWD"),
        ] {
            let money: Money = serde_json::from_str(text).unwrap();
            assert_eq!(money.currency().code(), currency);
            assert_eq!(serde_json::to_string(&money).unwrap(), text);
        }
    }

    #[test]
    fn deserializing_normalizes_to_the_minor_unit() {
        let money = from_json(json!({ "amount": "199.5", "currency": "USD" })).unwrap();
        assert_eq!(money, usd("199.50"));
        let value = serde_json::to_value(money).unwrap();
        assert_eq!(value["amount"], "199.50");
    }

    #[test]
    fn a_json_number_is_refused_with_a_message_that_says_to_send_a_string() {
        for amount in [json!(199.0), json!(199), json!(null), json!(["199.00"])] {
            let error = from_json(json!({ "amount": amount, "currency": "USD" })).unwrap_err();
            assert!(error.contains("decimal string"), "{error}");
        }
    }

    #[test]
    fn negative_amounts_are_refused() {
        let error = from_json(json!({ "amount": "-1.00", "currency": "USD" })).unwrap_err();
        assert!(error.contains("must not be negative"), "{error}");
        assert_eq!(
            Money::new(Decimal::new(-100, 2), Currency::Usd),
            Err(MoneyError::Negative(Decimal::new(-100, 2)))
        );
        // Negative zero is zero.
        assert_eq!(
            Money::parse("-0.00", Currency::Usd),
            Ok(Money::zero(Currency::Usd))
        );
    }

    #[test]
    fn amounts_finer_than_the_minor_unit_are_refused() {
        let error = from_json(json!({ "amount": "199.001", "currency": "USD" })).unwrap_err();
        assert_eq!(
            error,
            "USD amounts have at most 2 decimal places, got 199.001"
        );
        assert!(matches!(
            Money::parse("100.5", Currency::Jpy),
            Err(MoneyError::TooPrecise {
                currency: Currency::Jpy,
                ..
            })
        ));
        assert!(Money::parse("100.000", Currency::Jpy).is_ok());
        assert!(Money::parse("1.0005", Currency::Kwd).is_err());
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for amount in [
            "", " 1.00", "1.00 ", "+1.00", "1e3", "1_000", "1,000.00", ".5", "5.", "1.2.3", "abc",
            "0x10", "--1", "NaN",
        ] {
            assert_eq!(
                Money::parse(amount, Currency::Usd),
                Err(MoneyError::Malformed(amount.to_owned())),
                "{amount:?}"
            );
        }
        assert_eq!(
            Money::parse("99999999999999999999999999999999", Currency::Usd),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn unknown_currencies_are_refused() {
        for code in ["XYZ", "usd", "", "USDT"] {
            let error = from_json(json!({ "amount": "1.00", "currency": code })).unwrap_err();
            assert_eq!(
                error,
                format!("unknown currency `{code}`, expected one of USD, EUR, GBP, JPY, KRW, KWD")
            );
        }
        let error = from_json(json!({ "amount": "1.00", "currency": 840 })).unwrap_err();
        assert!(error.contains("ISO 4217 currency code"), "{error}");
    }

    #[test]
    fn missing_fields_are_refused_and_unknown_fields_ignored() {
        assert!(from_json(json!({ "amount": "1.00" })).is_err());
        assert!(from_json(json!({ "currency": "USD" })).is_err());
        let money = from_json(json!({ "amount": "1.00", "currency": "USD", "note": 1 })).unwrap();
        assert_eq!(money, usd("1"));
    }

    #[test]
    fn currencies_parse_from_their_iso_codes() {
        for currency in Currency::ALL {
            assert_eq!(currency.code().parse::<Currency>(), Ok(currency));
        }
        assert_eq!(Currency::Usd.minor_units(), 2);
        assert_eq!(Currency::Krw.minor_units(), 0);
        assert_eq!(
            "CHF".parse::<Currency>(),
            Err(MoneyError::UnknownCurrency("CHF".to_owned()))
        );
    }

    #[test]
    fn arithmetic_stays_within_one_currency() {
        assert_eq!(usd("199.99").checked_add(&usd("0.01")), Ok(usd("200")));
        assert_eq!(usd("200").checked_sub(&usd("0.01")), Ok(usd("199.99")));
        assert_eq!(
            usd("1").checked_sub(&usd("1")),
            Ok(Money::zero(Currency::Usd))
        );
        assert_eq!(usd("199.99").times(3), Ok(usd("599.97")));
        assert_eq!(usd("199.99").times(0), Ok(Money::zero(Currency::Usd)));

        let euro = Money::parse("1.00", Currency::Eur).unwrap();
        let mismatch = MoneyError::CurrencyMismatch {
            left: Currency::Usd,
            right: Currency::Eur,
        };
        assert_eq!(usd("1").checked_add(&euro), Err(mismatch.clone()));
        assert_eq!(usd("1").checked_sub(&euro), Err(mismatch.clone()));
        assert_eq!(usd("1").checked_cmp(&euro), Err(mismatch));
    }

    #[test]
    fn subtraction_below_zero_is_an_error() {
        assert_eq!(
            usd("1.00").checked_sub(&usd("1.01")),
            Err(MoneyError::Negative(Decimal::new(-1, 2)))
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let huge = Money::new(Decimal::MAX, Currency::Jpy).unwrap();
        assert_eq!(huge.checked_add(&huge), Err(MoneyError::Overflow));
        assert_eq!(huge.times(2), Err(MoneyError::Overflow));
        // No room for two decimal places.
        assert_eq!(
            Money::new(Decimal::MAX, Currency::Usd),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn amounts_compare_within_a_currency_only() {
        assert!(usd("10") < usd("10.01"));
        assert_eq!(usd("10.0"), usd("10.00"));
        let euro = Money::parse("10.00", Currency::Eur).unwrap();
        assert_ne!(usd("10"), euro);
        assert_eq!(usd("10").partial_cmp(&euro), None);
        let (less, greater) = (usd("10") < euro, usd("10") > euro);
        assert!(
            !less && !greater,
            "amounts in different currencies are unordered"
        );
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::ALL.to_vec())
    }

    /// Any valid amount: an integer count of minor units.
    fn any_money() -> impl Strategy<Value = Money> {
        (0..=i64::MAX, any_currency()).prop_map(|(minor, currency)| {
            Money::new(Decimal::new(minor, currency.minor_units()), currency).unwrap()
        })
    }

    proptest! {
        #[test]
        fn every_valid_amount_round_trips_through_json(money in any_money()) {
            let text = serde_json::to_string(&money).unwrap();
            let back: Money = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, money);
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }

        #[test]
        fn the_wire_amount_has_exactly_the_minor_unit_scale(money in any_money()) {
            let value = serde_json::to_value(money).unwrap();
            let amount = value["amount"].as_str().unwrap();
            let decimals = amount.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            prop_assert_eq!(decimals, money.currency().minor_units() as usize);
        }

        #[test]
        fn adding_then_subtracting_gives_back_the_original(
            a in 0..=i64::MAX / 2, b in 0..=i64::MAX / 2, currency in any_currency()
        ) {
            let scale = currency.minor_units();
            let a = Money::new(Decimal::new(a, scale), currency).unwrap();
            let b = Money::new(Decimal::new(b, scale), currency).unwrap();
            let sum = a.checked_add(&b).unwrap();
            prop_assert_eq!(sum.checked_sub(&b), Ok(a));
            prop_assert!(sum >= a && sum >= b);
        }
    }
}
