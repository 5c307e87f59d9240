//! Subscribers' addresses, parsed once at the edge (parse, don't validate): a
//! [`SubscriberEmail`] is a syntactically valid address, normalised, and prints masked.

use std::fmt;

/// A subscriber's email address: valid by construction (RFC 5321 syntax, as lettre's
/// [`lettre::Address`] checks it), trimmed, its domain lower-cased (the local part is kept as
/// given: it may be case-sensitive).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SubscriberEmail(lettre::Address);

impl SubscriberEmail {
    /// Parses what a person typed. The error says what is wrong without repeating the input.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("an email address is required".into());
        }
        if s.len() > 254 {
            return Err("an email address has at most 254 characters".into());
        }
        let addr: lettre::Address = s
            .parse()
            .map_err(|_| "this is not a valid email address (write it like name@example.com)")?;
        let domain = addr.domain().to_ascii_lowercase();
        if !domain.contains('.') && domain != "localhost" {
            return Err("the address needs a full domain, like name@example.com".into());
        }
        let addr = lettre::Address::new(addr.user(), domain)
            .map_err(|_| "this is not a valid email address (write it like name@example.com)")?;
        Ok(Self(addr))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub fn address(&self) -> &lettre::Address {
        &self.0
    }

    /// For logs: the first character of the local part and the domain (`j***@example.com`).
    pub fn masked(&self) -> String {
        mask(self.as_str())
    }
}

/// Masks any address-looking string for logs.
pub fn mask(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Debug never shows the whole address, so a stray `{:?}` in a log line does not leak it.
impl fmt::Debug for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubscriberEmail({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_parse_and_normalise() {
        let e = SubscriberEmail::parse("  Ursula.Le-Guin@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ursula.Le-Guin@example.com");
        assert_eq!(e.masked(), "U***@example.com");
        assert!(!format!("{e:?}").contains("Ursula"));
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "ursula@",
            "ursula@@example.com",
            "ursula@example",
            "urs ula@example.com",
            "ursula@exa mple.com",
            "<script>@example.com",
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(SubscriberEmail::parse(&long).is_err());
    }
}
