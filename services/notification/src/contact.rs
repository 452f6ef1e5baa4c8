//! Recipients: checked before anything is recorded, masked wherever they
//! leave the service (logs, the HTTP API).
//!
//! The booking service validates contacts too; this is the second line,
//! because a command that reaches us malformed must be parked, not sent to a
//! provider that would reject it (or, worse, deliver it somewhere else).

use contracts::notification::{Channel, Contact};

/// Why a contact cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("the contact has neither an email address nor a phone number")]
    NoChannel,
    #[error("the email address is not valid: {0}")]
    InvalidEmail(&'static str),
    #[error("the phone number is not in E.164 form (+ and 8 to 15 digits)")]
    InvalidPhone,
}

/// One channel and the address to reach the customer on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub channel: Channel,
    pub address: String,
}

/// The channels a contact can be reached on, email first. Any malformed
/// field refuses the whole contact: sending on the good channel alone would
/// hide the bad data from whoever has to fix it.
pub fn recipients(contact: &Contact) -> Result<Vec<Recipient>, ContactError> {
    let mut recipients = Vec::with_capacity(2);
    if let Some(email) = &contact.email {
        validate_email(email)?;
        recipients.push(Recipient {
            channel: Channel::Email,
            address: email.clone(),
        });
    }
    if let Some(phone) = &contact.phone {
        validate_phone(phone)?;
        recipients.push(Recipient {
            channel: Channel::Sms,
            address: phone.clone(),
        });
    }
    if recipients.is_empty() {
        return Err(ContactError::NoChannel);
    }
    Ok(recipients)
}

/// A deliberately plain check (one `@`, a dotted domain of letters, digits
/// and hyphens, no spaces or control characters, RFC 5321 lengths): enough to
/// catch garbage, not an attempt at the full RFC 5322 grammar.
pub fn validate_email(email: &str) -> Result<(), ContactError> {
    if email.len() > 254 {
        return Err(ContactError::InvalidEmail("longer than 254 characters"));
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(ContactError::InvalidEmail(
            "contains spaces, control or non-ASCII characters",
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(ContactError::InvalidEmail("has no @"));
    };
    if domain.contains('@') {
        return Err(ContactError::InvalidEmail("has more than one @"));
    }
    if local.is_empty() || local.len() > 64 {
        return Err(ContactError::InvalidEmail(
            "the part before @ must be 1 to 64 characters",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(ContactError::InvalidEmail(
            "the part before @ has a misplaced dot",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(ContactError::InvalidEmail("the domain has no dot"));
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !labels.iter().all(label_ok) {
        return Err(ContactError::InvalidEmail("the domain is malformed"));
    }
    Ok(())
}

/// E.164: a `+`, then 8 to 15 digits, nothing else (no spaces or dashes: the
/// booking service normalizes, so anything else is a bug upstream).
pub fn validate_phone(phone: &str) -> Result<(), ContactError> {
    let digits = phone.strip_prefix('+').ok_or(ContactError::InvalidPhone)?;
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ContactError::InvalidPhone)
    }
}

/// The address as it may appear in logs and API answers.
pub fn mask(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Email => mask_email(address),
        Channel::Sms => mask_phone(address),
    }
}

/// `jane@example.com` → `j***@example.com`: the domain helps support, the
/// local part identifies the person.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `+821012341234` → `+82******1234`: country code and last four digits, as
/// a customer would recognize their own number.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.trim_start_matches('+').chars().collect();
    if digits.len() < 8 {
        return "***".to_owned();
    }
    let hidden = digits.len() - 6;
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("+{head}{}{tail}", "*".repeat(hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(email: Option<&str>, phone: Option<&str>) -> Contact {
        Contact {
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
        }
    }

    #[test]
    fn a_contact_with_both_fields_is_reached_by_email_then_sms() {
        let recipients =
            recipients(&contact(Some("jane@example.com"), Some("+821012341234"))).unwrap();
        let channels: Vec<Channel> = recipients.iter().map(|r| r.channel).collect();
        assert_eq!(channels, [Channel::Email, Channel::Sms]);
    }

    #[test]
    fn a_contact_with_one_field_is_reached_on_that_channel_only() {
        let by_phone = recipients(&contact(None, Some("+12025550123"))).unwrap();
        assert_eq!(by_phone.len(), 1);
        assert_eq!(by_phone[0].channel, Channel::Sms);
        let by_email = recipients(&contact(Some("a@b.co"), None)).unwrap();
        assert_eq!(by_email[0].channel, Channel::Email);
    }

    #[test]
    fn a_contact_without_email_or_phone_is_refused() {
        assert_eq!(
            recipients(&contact(None, None)),
            Err(ContactError::NoChannel)
        );
    }

    #[test]
    fn one_malformed_field_refuses_the_whole_contact() {
        let refused = recipients(&contact(Some("jane@example.com"), Some("010-1234-1234")));
        assert_eq!(refused, Err(ContactError::InvalidPhone));
    }

    #[test]
    fn plausible_email_addresses_are_accepted() {
        for email in [
            "jane@example.com",
            "jane.doe+trip@mail.example.co.kr",
            "x@a-b.io",
        ] {
            assert_eq!(validate_email(email), Ok(()), "{email}");
        }
    }

    #[test]
    fn malformed_email_addresses_are_refused() {
        for email in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "ja ne@example.com",
            "jane@exa_mple.com",
            "jane@-example.com",
            "jane@example..com",
            ".jane@example.com",
            "jané@example.com",
            "jane@example.com\n",
        ] {
            assert!(validate_email(email).is_err(), "{email:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(validate_email(&long).is_err());
    }

    #[test]
    fn e164_phone_numbers_are_accepted() {
        for phone in ["+12345678", "+821012341234", "+123456789012345"] {
            assert_eq!(validate_phone(phone), Ok(()), "{phone}");
        }
    }

    #[test]
    fn phone_numbers_not_in_e164_form_are_refused() {
        for phone in [
            "",
            "+",
            "821012341234",
            "+1234567",
            "+1234567890123456",
            "+82 10 1234 1234",
            "+82-10-1234-1234",
            "+8210１2341234",
        ] {
            assert_eq!(
                validate_phone(phone),
                Err(ContactError::InvalidPhone),
                "{phone:?}"
            );
        }
    }

    #[test]
    fn email_addresses_are_masked_but_keep_their_domain() {
        assert_eq!(mask_email("jane@example.com"), "j***@example.com");
        assert_eq!(mask_email("x@a.io"), "x***@a.io");
        assert_eq!(mask_email("garbage"), "***");
    }

    #[test]
    fn phone_numbers_are_masked_but_keep_country_code_and_last_four_digits() {
        assert_eq!(mask_phone("+821012341234"), "+82******1234");
        assert_eq!(mask_phone("+12345678"), "+12**5678");
        assert_eq!(mask_phone("+12"), "***");
    }

    #[test]
    fn mask_follows_the_channel() {
        assert_eq!(mask(Channel::Email, "jane@example.com"), "j***@example.com");
        assert_eq!(mask(Channel::Sms, "+821012341234"), "+82******1234");
    }
}
