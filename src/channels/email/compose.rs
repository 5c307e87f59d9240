//! Each recipient's copy of one update mail.
//!
//! All copies of an update are the same mail but for three things: the `To` header, the
//! recipient's unsubscribe token (in `List-Unsubscribe` and in both bodies) and the mail it
//! replies to (the first mail about the incident that reached them; the same for nearly all). Building every copy
//! with lettre (headers, quoted-printable, then dot-stuffing) was most of a fan-out's CPU, so a
//! fan-out builds the mail with lettre once per token length and thread, as a template, and each copy is
//! that template with the recipient's token written over the placeholder's bytes and its `To`
//! line in front.
//!
//! A template is found, not assumed: the mail (without `To`) is built twice, with two
//! placeholders of the token's length that differ in every character (`aaa…` and `bbb…`), and
//! the bytes where the two builds differ are the token's places, wherever quoted-printable's
//! line breaks put them. It is then checked against lettre's own build of the first real
//! recipient's copy (in debug builds, of every copy, so the test suite checks them all). A
//! template that does not match is not used, and its recipients get lettre's build. Each copy is
//! dot-stuffed as it is made. Mails that
//! are DKIM-signed (the signature covers `To`) and addresses that are not plain ASCII are
//! always built by lettre.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lettre::message::dkim::DkimConfig;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Address;

use super::headers::list_headers;
use super::smtp::{stuff_into, Outgoing};
use crate::domain::subscriber::SubscriberEmail;
use crate::store::subscribers::{Recipient, UnsubscribeKey};

/// Stands for each recipient's own unsubscribe URL in the texts rendered once per delivery.
pub(super) const UNSUBSCRIBE_PLACEHOLDER: &str = "https://candor.invalid/unsubscribe/PLACEHOLDER";

/// The parts of one update mail, rendered once per delivery.
pub(super) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    pub list_id: String,
    /// The Message-IDs of the incident's earlier mails, by delivery: what a recipient's copy
    /// replies to is the one of their [`Recipient::first_delivery`].
    pub thread: HashMap<i64, String>,
}

/// Builds every recipient's copy of one update.
pub(super) struct Composer {
    pub rendered: Rendered,
    pub from: Mailbox,
    pub date: SystemTime,
    /// `https://status.example.com/unsubscribe/`: the token follows.
    pub unsubscribe_base: String,
    pub key: UnsubscribeKey,
    pub dkim: Option<Arc<DkimConfig>>,
    /// One MIME boundary for all copies (lettre would draw a new one for each build).
    boundary: String,
    /// By token length and the delivery replied to; `None` when no usable template could be
    /// made for it.
    templates: Mutex<Templates>,
}

/// Templates by token length and the delivery replied to.
type Templates = HashMap<(usize, Option<i64>), Option<Arc<Template>>>;

/// One update's mail without `To`, as lettre formats it (not yet dot-stuffed: a token's `.`
/// may start a quoted-printable line), with a placeholder token.
struct Template {
    bytes: Vec<u8>,
    /// Where the token's characters go, in order: the `i`-th place takes the token's
    /// `i % len`-th character.
    places: Vec<u32>,
    len: usize,
}

impl Template {
    /// The template with `token` written in, after `out`'s current contents.
    fn fill_into(&self, token: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        for (i, &at) in self.places.iter().enumerate() {
            out[start + at as usize] = token[i % self.len];
        }
    }
}

impl Composer {
    pub fn new(
        rendered: Rendered,
        from: Mailbox,
        date: SystemTime,
        public_url: &str,
        key: UnsubscribeKey,
        dkim: Option<Arc<DkimConfig>>,
    ) -> Self {
        use rand::distributions::{Alphanumeric, DistString};
        Self {
            rendered,
            from,
            date,
            unsubscribe_base: format!("{public_url}/unsubscribe/"),
            key,
            dkim,
            boundary: Alphanumeric.sample_string(&mut rand::thread_rng(), 40),
            templates: Mutex::new(HashMap::new()),
        }
    }

    pub fn sender(&self) -> &Address {
        &self.from.email
    }

    /// Recipient `r`'s copy, ready to send; `Err` when it cannot be made (recorded as failed).
    pub fn mail_for(&self, r: &Recipient) -> Result<Outgoing, String> {
        let to = SubscriberEmail::parse(&r.email)
            .map_err(|e| format!("stored address is not valid: {e}"))?;
        let token = self.key.token(r.id, &r.unsubscribe_salt);
        let thread = self.replied_to(r);
        let mut data = Vec::new();
        if self.dkim.is_some() || !plain_address(to.as_str()) {
            let mail = self.build(Some(to.address()), &token, thread)?;
            stuff_into(&mail.formatted(), &mut data);
        } else if let Some(template) = self.template(&token, thread)? {
            let mut filled = Vec::with_capacity(template.bytes.len());
            template.fill_into(token.as_bytes(), &mut filled);
            if cfg!(debug_assertions) && filled != self.build(None, &token, thread)?.formatted() {
                return Err("internal: the template's copy differs from lettre's".into());
            }
            data.reserve(filled.len() + to.as_str().len() + 16);
            data.extend_from_slice(b"To: ");
            data.extend_from_slice(to.as_str().as_bytes());
            data.extend_from_slice(b"\r\n");
            stuff_into(&filled, &mut data);
        } else {
            let mail = self.build(Some(to.address()), &token, thread)?;
            stuff_into(&mail.formatted(), &mut data);
        }
        let data = String::from_utf8(data).map_err(|_| "the message is not UTF-8".to_string())?;
        Ok(Outgoing {
            to: to.address().clone(),
            data,
        })
    }

    /// The earlier delivery (and its Message-ID) `r`'s copy replies to: the first mail about
    /// this incident that reached them. `None` when this is their first.
    fn replied_to(&self, r: &Recipient) -> Option<(i64, &str)> {
        let d = r.first_delivery?;
        let id = self.rendered.thread.get(&d)?;
        (*id != self.rendered.message_id).then_some((d, id.as_str()))
    }

    /// The template for tokens of `token`'s length replying to `thread`, made (and checked
    /// against `token`'s copy) on first use.
    fn template(
        &self,
        token: &str,
        thread: Option<(i64, &str)>,
    ) -> Result<Option<Arc<Template>>, String> {
        let key = (token.len(), thread.map(|(d, _)| d));
        let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = templates.get(&key) {
            return Ok(t.clone());
        }
        let made = self.make_template(token, thread)?.map(Arc::new);
        if made.is_none() {
            tracing::debug!(
                token.len = token.len(),
                "no mail template for this token length: copies are built one by one"
            );
        }
        templates.insert(key, made.clone());
        Ok(made)
    }

    fn make_template(
        &self,
        token: &str,
        thread: Option<(i64, &str)>,
    ) -> Result<Option<Template>, String> {
        let len = token.len();
        let built =
            |t: &str| -> Result<Vec<u8>, String> { Ok(self.build(None, t, thread)?.formatted()) };
        let a = built(&"a".repeat(len))?;
        let b = built(&"b".repeat(len))?;
        if a.len() != b.len() {
            return Ok(None);
        }
        let mut places = Vec::new();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if x != y {
                if (*x, *y) != (b'a', b'b') {
                    return Ok(None);
                }
                places.push(u32::try_from(i).map_err(|_| "the mail is too large")?);
            }
        }
        if places.is_empty() || places.len() % len != 0 {
            return Ok(None);
        }
        let template = Template {
            bytes: a,
            places,
            len,
        };
        let mut filled = Vec::new();
        template.fill_into(token.as_bytes(), &mut filled);
        Ok((filled == built(token)?).then_some(template))
    }

    /// lettre's build of one copy, replying to `thread`; without `To` when `to` is `None` (a
    /// template's part).
    fn build(
        &self,
        to: Option<&Address>,
        token: &str,
        thread: Option<(i64, &str)>,
    ) -> Result<lettre::Message, String> {
        let m = &self.rendered;
        let url = format!("{}{token}", self.unsubscribe_base);
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(m.subject.clone())
            .date(self.date)
            .message_id(Some(m.message_id.clone()));
        b = match to {
            Some(to) => b.to(Mailbox::new(None, to.clone())),
            // No recipient header: the envelope is the session's business.
            None => b.envelope(
                lettre::address::Envelope::new(
                    Some(self.from.email.clone()),
                    vec![self.from.email.clone()],
                )
                .map_err(|e| format!("cannot build the mail: {e}"))?,
            ),
        };
        if let Some((_, root)) = thread {
            b = b.in_reply_to(root.to_string()).references(root.to_string());
        }
        b = list_headers(b, &m.list_id, &url);
        let body = MultiPart::alternative()
            .boundary(self.boundary.clone())
            .singlepart(SinglePart::plain(
                m.text.replace(UNSUBSCRIBE_PLACEHOLDER, &url),
            ))
            .singlepart(SinglePart::html(m.html.replace(
                &html_escaped(UNSUBSCRIBE_PLACEHOLDER),
                &html_escaped(&url),
            )));
        let mut mail = b
            .multipart(body)
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        if let (Some(dkim), Some(_)) = (&self.dkim, to) {
            mail.sign(dkim);
        }
        Ok(mail)
    }
}

/// An address lettre writes in `To` as it is: ASCII letters, digits and the few symbols
/// addresses commonly hold (anything else is built by lettre).
fn plain_address(address: &str) -> bool {
    address
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"@.-_+=".contains(&b))
}

/// A URL as minijinja's HTML escaping writes it (the placeholder and the unsubscribe URLs hold
/// nothing else it escapes: letters, digits, `:`, `.`, `-`, `_` and `/`).
pub(super) fn html_escaped(url: &str) -> String {
    url.replace('/', "&#x2f;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer(text: &str, html: &str, dkim: bool) -> Composer {
        let dkim = dkim.then(|| {
            use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
            // An Ed25519 key (base64 of 32 bytes): signing needs no more than that.
            let key = DkimSigningKey::new(
                "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
                DkimSigningAlgorithm::Ed25519,
            )
            .unwrap();
            Arc::new(DkimConfig::default_config(
                "s".into(),
                "acme.test".into(),
                key,
            ))
        });
        Composer::new(
            Rendered {
                subject: "Elevated API errors".into(),
                text: text.into(),
                html: html.into(),
                message_id: "<incident-1.update-2@acme.test>".into(),
                list_id: "\"Acme\" <status-updates.status.acme.test>".into(),
                thread: HashMap::from([(1, "<incident-1.update-1@acme.test>".to_string())]),
            },
            "Acme Status <status@acme.test>".parse().unwrap(),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            "https://status.acme.test",
            UnsubscribeKey::new("a-secret-that-is-long-enough-0123456789"),
            dkim,
        )
    }

    fn recipient(id: i64, email: &str) -> Recipient {
        Recipient {
            id,
            email: email.into(),
            components: String::new(),
            unsubscribe_salt: format!("salt-{id}"),
            // Most replied to delivery 1; one in three joined later (this is their first).
            first_delivery: (id % 3 != 0).then_some(1),
        }
    }

    /// The copy as sent, undone: dot-stuffing removed, the final `.` line dropped.
    fn unstuffed(data: &str) -> Vec<u8> {
        let body = data.strip_suffix(".\r\n").unwrap();
        body.split_inclusive("\r\n")
            .map(|l| l.strip_prefix('.').unwrap_or(l))
            .collect::<String>()
            .into_bytes()
    }

    /// Texts that make lettre choose quoted-printable with soft line breaks at many places
    /// (long lines, non-ASCII words, `=` signs), or leave it 7bit, with lines starting with `.`.
    fn texts() -> Vec<(String, String)> {
        let url = UNSUBSCRIBE_PLACEHOLDER;
        let html_url = html_escaped(url);
        let long = "We are investigating elevated error rates on the public API. ".repeat(9);
        vec![
            (
                format!("Short lines.\n.starts with a dot\n\nUnsubscribe: {url}"),
                format!("<p>Short.</p>\n<a href=\"{html_url}\">Unsubscribe</a>"),
            ),
            (
                format!("{long}\nUnsubscribe: {url}"),
                format!("<p>{long}</p><p><a href=\"{html_url}\">Unsubscribe</a> {long}</p>"),
            ),
            (
                format!("Störung behoben = fast. {long}Abmelden: {url} {long}"),
                format!("<p>Störung – {long}<a href=\"{html_url}\">x</a>{long}</p>"),
            ),
        ]
    }

    #[test]
    fn every_copy_filled_from_the_template_is_the_mail_lettre_builds_for_that_recipient() {
        let key = UnsubscribeKey::new("a-secret-that-is-long-enough-0123456789");
        for (text, html) in texts() {
            let c = composer(&text, &html, false);
            // Ids of 1 to 7 digits: seven token lengths, so seven templates.
            for id in [1, 42, 999, 1234, 98765, 123456, 9999999] {
                let r = recipient(id, &format!("user{id}@example.com"));
                let sent = c.mail_for(&r).unwrap();
                let token = key.token(id, &r.unsubscribe_salt);
                let thread = c.replied_to(&r);
                assert_eq!(thread.is_some(), id % 3 != 0);
                assert!(
                    c.template(&token, thread).unwrap().is_some(),
                    "no template for tokens of {} characters",
                    token.len()
                );
                // lettre's own build of this copy, `To` and all.
                let lettre = c
                    .build(Some(&r.email.parse().unwrap()), &token, thread)
                    .unwrap()
                    .formatted();
                let ours = unstuffed(&sent.data);
                let to_line = format!("To: user{id}@example.com\r\n");
                assert!(ours.starts_with(to_line.as_bytes()));
                // The same headers and body; only where `To` stands differs.
                let theirs = String::from_utf8(lettre).unwrap().replacen(&to_line, "", 1);
                assert_eq!(
                    String::from_utf8(ours[to_line.len()..].to_vec()).unwrap(),
                    theirs
                );
                // And a mail reader finds the recipient's own link in both parts, and the
                // mail it replies to, if any.
                let parsed = mailparse::parse_mail(&ours).unwrap();
                use mailparse::MailHeaderMap;
                assert_eq!(
                    parsed.headers.get_first_value("In-Reply-To"),
                    thread.map(|(_, m)| m.to_string())
                );
                let link = format!("https://status.acme.test/unsubscribe/{token}");
                for part in &parsed.subparts {
                    let body = part.get_body().unwrap().replace("&#x2f;", "/");
                    assert!(body.contains(&link), "{}", part.ctype.mimetype);
                }
                assert_eq!(sent.to.to_string(), format!("user{id}@example.com"));
            }
        }
    }

    #[test]
    fn dkim_and_unusual_addresses_are_built_by_lettre_for_each_copy() {
        let (text, html) = texts().remove(1);
        let c = composer(&text, &html, true);
        let sent = c.mail_for(&recipient(7, "ann@example.com")).unwrap();
        assert!(
            sent.data.starts_with("DKIM-Signature:") || sent.data.contains("\r\nDKIM-Signature:")
        );
        assert!(
            c.templates.lock().unwrap().is_empty(),
            "no template with DKIM"
        );

        let c = composer(&text, &html, false);
        let sent = c.mail_for(&recipient(8, "ann!x@example.com")).unwrap();
        assert!(
            c.templates.lock().unwrap().is_empty(),
            "an unusual address is built by lettre"
        );
        assert!(sent.data.contains("\r\nTo: ann!x@example.com\r\n"));
    }

    #[test]
    fn a_stored_address_that_is_not_valid_is_refused_with_a_reason() {
        let (text, html) = texts().remove(0);
        let c = composer(&text, &html, false);
        let err = c.mail_for(&recipient(9, "not an address")).err().unwrap();
        assert!(err.contains("stored address is not valid"), "{err}");
    }
}
