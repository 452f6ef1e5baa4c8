//! The envelope every message travels in, and the grammar of message types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A versioned message payload. `MESSAGE_TYPE` is `<service>.<Name>.v<N>`,
/// e.g. `inventory.HoldSeats.v1`; a breaking change is a new type with a
/// higher version, and both are accepted while producers migrate.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    const MESSAGE_TYPE: &'static str;
}

/// A message and its metadata.
///
/// - `message_id`: a UUIDv7, unique per message; the inbox's idempotency key;
/// - `correlation_id`: the business process it belongs to (the booking id for the saga);
/// - `causation_id`: the message that caused this one, if any;
/// - `expires_at`: when its sender stops waiting for it. A command that
///   arrives later is worth nothing — the sender has already tried again or
///   turned around without it — so a receiver drops it unapplied instead of
///   spending a backlog's capacity on it (see docs/saga.md, "Expiring
///   attempts"). Absent: the message never expires.
///
/// Trace context does not live here: it travels as W3C `traceparent` and
/// `tracestate` Kafka headers, so tooling that knows nothing of envelopes sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P = serde_json::Value> {
    pub message_id: Uuid,
    pub message_type: String,
    pub correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub payload: P,
}

impl<P: Message> Envelope<P> {
    /// The first message of a process.
    pub fn new(payload: P, correlation_id: Uuid) -> Self {
        Self {
            message_id: Uuid::now_v7(),
            message_type: P::MESSAGE_TYPE.to_owned(),
            correlation_id,
            causation_id: None,
            occurred_at: Utc::now(),
            expires_at: None,
            payload,
        }
    }

    /// The same message, dropped unapplied by a receiver after `expires_at`
    /// (`None`: never).
    pub fn expiring_at(self, expires_at: Option<DateTime<Utc>>) -> Self {
        Self { expires_at, ..self }
    }

    /// A message caused by `cause`: same correlation, causation pointing back at it.
    pub fn caused_by<Q>(payload: P, cause: &Envelope<Q>) -> Self {
        Self {
            causation_id: Some(cause.message_id),
            ..Self::new(payload, cause.correlation_id)
        }
    }

    /// The envelope with its payload as plain JSON, as it is stored and sent.
    pub fn to_json(&self) -> Result<Envelope<serde_json::Value>, serde_json::Error> {
        Ok(Envelope {
            message_id: self.message_id,
            message_type: self.message_type.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            occurred_at: self.occurred_at,
            expires_at: self.expires_at,
            payload: serde_json::to_value(&self.payload)?,
        })
    }
}

impl<P> Envelope<P> {
    /// Whether the sender had stopped waiting for this message by `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

impl Envelope<serde_json::Value> {
    /// The typed payload, if this envelope carries a `P`.
    pub fn decode<P: Message>(&self) -> Result<Envelope<P>, DecodeError> {
        if self.message_type != P::MESSAGE_TYPE {
            return Err(DecodeError::WrongType {
                expected: P::MESSAGE_TYPE,
                actual: self.message_type.clone(),
            });
        }
        let payload = P::deserialize(&self.payload).map_err(|source| DecodeError::Payload {
            message_type: P::MESSAGE_TYPE,
            source,
        })?;
        Ok(Envelope {
            message_id: self.message_id,
            message_type: self.message_type.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            occurred_at: self.occurred_at,
            expires_at: self.expires_at,
            payload,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("expected a {expected} message, got {actual}")]
    WrongType {
        expected: &'static str,
        actual: String,
    },
    #[error("the {message_type} payload does not match its contract")]
    Payload {
        message_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A parsed `<service>.<Name>.v<N>` message type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageType {
    pub service: String,
    pub name: String,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a message type of the form <service>.<Name>.v<N>")]
pub struct MessageTypeError(pub String);

impl FromStr for MessageType {
    type Err = MessageTypeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || MessageTypeError(text.to_owned());
        let mut parts = text.split('.');
        let (Some(service), Some(name), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let service_ok =
            !service.is_empty() && service.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        let version = version
            .strip_prefix('v')
            .and_then(|digits| digits.parse::<u32>().ok())
            .filter(|version| *version > 0);
        match (service_ok, name_ok, version) {
            (true, true, Some(version)) => Ok(Self {
                service: service.to_owned(),
                name: name.to_owned(),
                version,
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.v{}", self.service, self.name, self.version)
    }
}

impl MessageType {
    /// Same service and name, whatever the version.
    pub fn same_message_as(&self, other: &MessageType) -> bool {
        self.service == other.service && self.name == other.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct HoldSeats {
        seats: u32,
    }

    impl Message for HoldSeats {
        const MESSAGE_TYPE: &'static str = "inventory.HoldSeats.v1";
    }

    #[test]
    fn message_types_parse_and_print_back() {
        let parsed: MessageType = "inventory.HoldSeats.v2".parse().unwrap();
        assert_eq!(parsed.service, "inventory");
        assert_eq!(parsed.name, "HoldSeats");
        assert_eq!(parsed.version, 2);
        assert_eq!(parsed.to_string(), "inventory.HoldSeats.v2");
    }

    #[test]
    fn malformed_message_types_are_refused() {
        for text in [
            "",
            "inventory",
            "inventory.HoldSeats",
            "inventory.HoldSeats.2",
            "inventory.HoldSeats.v0",
            "inventory.holdSeats.v1",
            "Inventory.HoldSeats.v1",
            "inventory.HoldSeats.v1.extra",
            "inventory.Hold-Seats.v1",
        ] {
            assert!(text.parse::<MessageType>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn a_message_expires_at_its_moment_and_one_without_a_moment_never_does() {
        let sent = Envelope::new(HoldSeats { seats: 1 }, Uuid::now_v7());
        let at = sent.occurred_at + chrono::TimeDelta::seconds(10);
        let expiring = sent.clone().expiring_at(Some(at));
        assert!(!expiring.expired(at - chrono::TimeDelta::milliseconds(1)));
        assert!(expiring.expired(at));
        assert!(!sent.expired(at + chrono::TimeDelta::days(365)));
    }

    #[test]
    fn the_expiry_travels_and_a_message_from_before_it_existed_reads_as_never_expiring() {
        let at = Utc::now();
        let expiring = Envelope::new(HoldSeats { seats: 1 }, Uuid::now_v7()).expiring_at(Some(at));
        let json = serde_json::to_value(expiring.to_json().unwrap()).unwrap();
        let read: Envelope = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read.expires_at, Some(at));

        let mut older = json;
        older.as_object_mut().unwrap().remove("expires_at");
        let read: Envelope = serde_json::from_value(older).unwrap();
        assert_eq!(read.expires_at, None);
        let never =
            serde_json::to_value(Envelope::new(HoldSeats { seats: 1 }, Uuid::now_v7())).unwrap();
        assert!(never.get("expires_at").is_none(), "{never}");
    }

    #[test]
    fn a_caused_message_keeps_the_correlation_and_points_at_its_cause() {
        let correlation = Uuid::now_v7();
        let first = Envelope::new(HoldSeats { seats: 2 }, correlation);
        let second = Envelope::caused_by(HoldSeats { seats: 1 }, &first);
        assert_eq!(second.correlation_id, correlation);
        assert_eq!(second.causation_id, Some(first.message_id));
        assert_ne!(second.message_id, first.message_id);
    }

    #[test]
    fn an_envelope_survives_the_wire_and_decodes_to_its_type() {
        let sent = Envelope::new(HoldSeats { seats: 3 }, Uuid::now_v7());
        let bytes = serde_json::to_vec(&sent.to_json().unwrap()).unwrap();
        let received: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(received.decode::<HoldSeats>().unwrap(), sent);
    }

    #[test]
    fn decoding_to_the_wrong_type_or_shape_is_an_error() {
        let mut envelope = Envelope::new(HoldSeats { seats: 3 }, Uuid::now_v7())
            .to_json()
            .unwrap();
        envelope.payload = serde_json::json!({"seats": "three"});
        assert!(matches!(
            envelope.decode::<HoldSeats>(),
            Err(DecodeError::Payload { .. })
        ));
        envelope.message_type = "inventory.ReleaseSeats.v1".to_owned();
        assert!(matches!(
            envelope.decode::<HoldSeats>(),
            Err(DecodeError::WrongType { .. })
        ));
    }
}
