//! What every mail to subscribers carries besides its text: Message-IDs with a part of their
//! own per installation, the list's identity (`List-Id`, RFC 2919), the one-click unsubscribe
//! (`List-Unsubscribe` and `List-Unsubscribe-Post`, RFC 8058) and `Auto-Submitted:
//! auto-generated` (RFC 3834: no vacation auto-replies to a status mail).

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::MessageBuilder;
use sha2::{Digest, Sha256};

/// Headers the DKIM signature covers: lettre's default set leaves out the threading, list and
/// unsubscribe headers, whose forgery would matter most here.
pub const DKIM_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
];

/// How this installation names its mails.
#[derive(Debug, Clone)]
pub(super) struct Ids {
    /// The sender's domain: the right-hand side of Message-IDs.
    domain: String,
    /// This installation's part of every Message-ID: 16 hex digits of a hash of the random
    /// value stored once in its database and of its public URL. Stable across restarts; a
    /// copy with its own database, or restored from a backup but serving another URL, differs.
    install: String,
}

impl Ids {
    pub fn new(secret: &str, public_url: &str, domain: &str) -> Self {
        let hash = Sha256::new()
            .chain_update(b"candor-message-ids\n")
            .chain_update(secret.as_bytes())
            .chain_update(b"\n")
            .chain_update(public_url.as_bytes())
            .finalize();
        Self {
            domain: domain.to_string(),
            install: hex::encode(&hash[..8]),
        }
    }

    /// The Message-ID of one update's mail (the same for every recipient and on every retry,
    /// so a later mail can name it in `In-Reply-To`): by update, or by delivery for a message
    /// that has no update.
    pub fn update(&self, incident_id: i64, update_id: Option<i64>, delivery_id: i64) -> String {
        let what = match update_id {
            Some(u) => format!("update-{u}"),
            None => format!("delivery-{delivery_id}"),
        };
        format!(
            "<incident-{incident_id}.{what}.{}@{}>",
            self.install, self.domain
        )
    }

    /// The Message-ID of a correction's mails: its own, so that it replies in the thread
    /// rather than repeating the corrected update's.
    pub fn correction(&self, incident_id: i64, correction_id: i64) -> String {
        format!(
            "<incident-{incident_id}.correction-{correction_id}.{}@{}>",
            self.install, self.domain
        )
    }

    /// A fresh Message-ID for one confirmation mail (each attempt's mail carries another link,
    /// so it is another message).
    pub fn confirmation(&self, subscriber_id: i64) -> String {
        use rand::distributions::{Alphanumeric, DistString};
        let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
        format!(
            "<confirm-{subscriber_id}.{nonce}.{}@{}>",
            self.install, self.domain
        )
    }
}

/// The `List-Id` (RFC 2919) of a site's status mails: the site's name as the phrase (when it
/// is plain ASCII), and `status-updates.` before the public URL's host, or before the sender's
/// domain when the site is served from an IP address.
pub(super) fn list_id(site_name: &str, public_url: &url::Url, from_domain: &str) -> String {
    let namespace = match public_url.host() {
        Some(url::Host::Domain(d)) if d.contains('.') || d == "localhost" => d.to_string(),
        _ => from_domain.to_string(),
    };
    let id = format!("<status-updates.{}>", namespace.to_ascii_lowercase());
    let name = site_name.trim();
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" {id}")
    } else {
        id
    }
}

/// Adds the headers every subscriber's mail carries: `List-Id`, the one-click unsubscribe to
/// `unsubscribe_url`, and `Auto-Submitted`.
pub(super) fn list_headers(
    b: MessageBuilder,
    list_id: &str,
    unsubscribe_url: &str,
) -> MessageBuilder {
    let raw = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    b.raw_header(raw("List-Id", list_id.to_string()))
        .raw_header(raw("List-Unsubscribe", format!("<{unsubscribe_url}>")))
        .raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ))
        .raw_header(raw("Auto-Submitted", "auto-generated".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_differ_between_installations_and_stay_the_same_within_one() {
        let prod = Ids::new("secret-1", "https://status.acme.test", "acme.test");
        let again = Ids::new("secret-1", "https://status.acme.test", "acme.test");
        let staging = Ids::new("secret-1", "https://staging.status.acme.test", "acme.test");
        let other = Ids::new("secret-2", "https://status.acme.test", "acme.test");
        let id = prod.update(1, Some(2), 3);
        assert_eq!(id, again.update(1, Some(2), 3));
        assert!(id.starts_with("<incident-1.update-2.") && id.ends_with("@acme.test>"));
        assert_ne!(id, staging.update(1, Some(2), 3));
        assert_ne!(id, other.update(1, Some(2), 3));
        assert_eq!(
            prod.update(1, None, 3),
            id.replace("update-2", "delivery-3")
        );
        let c = prod.confirmation(7);
        assert!(
            c.starts_with("<confirm-7.") && c.ends_with(&format!(".{}@acme.test>", prod.install))
        );
        assert_ne!(c, prod.confirmation(7));
    }

    #[test]
    fn the_list_id_names_the_site_under_its_public_host() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert_eq!(
            list_id(
                "Acme \"Cloud\"",
                &url("https://Status.Acme.test/"),
                "acme.test"
            ),
            "\"Acme \\\"Cloud\\\"\" <status-updates.status.acme.test>"
        );
        assert_eq!(
            list_id("Störung", &url("http://127.0.0.1:8080"), "acme.test"),
            "<status-updates.acme.test>"
        );
    }
}
