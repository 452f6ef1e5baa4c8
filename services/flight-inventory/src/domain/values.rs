//! Values with a grammar, parsed once at the edge and trusted afterwards.
//!
//! Both grammars come from IATA standards rather than from business rules
//! that may change, so deserializing a stored event checks them again without
//! risk of refusing history.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that does not follow its grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not {expected}")]
pub struct InvalidValue {
    text: String,
    expected: &'static str,
}

/// An IATA airport code: three upper-case ASCII letters, e.g. `ICN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AirportCode(String);

impl AirportCode {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidValue {
                text: text.to_owned(),
                expected: "an IATA airport code (three upper-case letters, e.g. ICN)",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A flight number: the airline's two-character IATA designator followed by
/// one to four digits, e.g. `CT123`. A designator is letters or digits but
/// not two digits, which would make `12345` ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FlightNumber(String);

impl FlightNumber {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let bytes = text.as_bytes();
        let valid = match bytes {
            [first, second, number @ ..] => {
                let designator_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
                designator_char(first)
                    && designator_char(second)
                    && !(first.is_ascii_digit() && second.is_ascii_digit())
                    && (1..=4).contains(&number.len())
                    && number.iter().all(u8::is_ascii_digit)
            }
            _ => false,
        };
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidValue {
                text: text.to_owned(),
                expected: "a flight number (airline designator and 1 to 4 digits, e.g. CT123)",
            })
        }
    }

    /// The airline's designator, e.g. `CT` for `CT123`.
    pub fn airline(&self) -> &str {
        self.0.get(..2).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_value {
    ($type:ident) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $type {
            type Error = InvalidValue;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> String {
                value.0
            }
        }
    };
}

string_value!(AirportCode);
string_value!(FlightNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airport_codes_are_three_upper_case_letters() {
        for code in ["ICN", "JFK", "LHR"] {
            assert_eq!(AirportCode::parse(code).unwrap().as_str(), code);
        }
        for code in ["", "IC", "ICNN", "icn", "IC1", "ÍCN", " ICN"] {
            assert!(AirportCode::parse(code).is_err(), "{code:?}");
        }
    }

    #[test]
    fn flight_numbers_are_a_designator_and_up_to_four_digits() {
        for number in ["CT1", "CT123", "CT1234", "U2123", "9W12"] {
            assert_eq!(FlightNumber::parse(number).unwrap().as_str(), number);
        }
        assert_eq!(FlightNumber::parse("CT123").unwrap().airline(), "CT");
        for number in [
            "", "C", "CT", "CT12345", "ct123", "12123", "CT12A", "CT 12", "CT-12",
        ] {
            assert!(FlightNumber::parse(number).is_err(), "{number:?}");
        }
    }

    #[test]
    fn values_deserialize_only_when_valid() {
        let code: AirportCode = serde_json::from_str(r#""ICN""#).unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""ICN""#);
        let error = serde_json::from_str::<AirportCode>(r#""icn""#).unwrap_err();
        assert!(
            error.to_string().contains("not an IATA airport code"),
            "{error}"
        );
        assert!(serde_json::from_str::<FlightNumber>(r#""CT12345""#).is_err());
    }
}
