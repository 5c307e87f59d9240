//! The double opt-in mail: the only mail an unconfirmed address ever gets.

use std::time::SystemTime;

use lettre::message::{Mailbox, MultiPart};
use lettre::AsyncTransport;
use minijinja::Value;
use serde_json::json;

use super::headers::{list_headers, Ids};
use super::{db_err, scrub, EmailChannel};
use crate::channels::{Confirmation, DeliveryContext, SendError, Sent};
use crate::store::subscribers;

impl EmailChannel {
    /// Sends subscriber `c`'s double opt-in mail (the only mail an unconfirmed address ever
    /// gets) with a link minted for this attempt, and once the server has taken it, makes that
    /// link the one that works (its hash and expiry, `confirm_within` from now). Until then the
    /// link of any earlier mail keeps working: a server that is down never leaves the subscriber
    /// with a dead link and no new one. A subscriber who confirmed, unsubscribed or was removed
    /// meanwhile is sent nothing.
    pub(super) async fn send_confirmation(
        &self,
        c: &Confirmation,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        let id = c.subscriber_id;
        let pending = {
            let mut conn = self.conn().await?;
            subscribers::pending(&mut conn, id).await.map_err(db_err)?
        };
        let Some(pending) = pending else {
            tracing::info!(
                subscriber.id = id,
                "no longer waiting for confirmation; nothing to send"
            );
            return Ok(Sent::default());
        };
        let ids = self.ids().await?;
        let token = subscribers::confirmation_token();
        let mail = self
            .confirmation_mail(ids, id, &pending, &token, ctx.now)
            .map_err(SendError::permanent)?;
        self.transport.send(mail).await.map_err(|e| {
            // The refusal may quote the address: it is masked before it is logged or stored.
            let why = scrub(&e.to_string(), Some(pending.email.as_str()));
            if e.is_permanent() {
                SendError::permanent(format!("the mail server refused the confirmation: {why}"))
            } else {
                SendError::retryable(format!("the confirmation was not sent: {why}"))
            }
        })?;
        let expires = ctx.now + crate::domain::to_chrono(self.confirm_within);
        let stored = async {
            let mut conn = self.db.write_conn().await?;
            subscribers::set_confirmation(&mut conn, id, &token, expires).await
        }
        .await;
        if let Err(e) = stored {
            return Err(SendError::retryable(format!(
                "the confirmation was sent but its link could not be recorded ({e}); another \
                 will be sent"
            )));
        }
        tracing::info!(subscriber.id = id, to = %pending.email.masked(), "confirmation mail sent");
        Ok(Sent::default())
    }

    /// The confirmation mail to `pending` (subscriber `id`) carrying `token`'s link. Like
    /// every mail to subscribers it has a one-click unsubscribe: someone who never asked can
    /// stop any further confirmation mail.
    pub(super) fn confirmation_mail(
        &self,
        ids: &Ids,
        id: i64,
        pending: &subscribers::Pending,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<lettre::Message, String> {
        let names: Vec<&str> = pending
            .components
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter_map(|id| self.component_names.get(id).map(String::as_str))
            .collect();
        let context = Value::from_serialize(json!({
            "site_name": self.site_name,
            "confirm_url": format!("{}/subscribe/confirm/{token}", self.public_url),
            "components": names,
            "valid_for": crate::domain::text::human_duration(crate::domain::to_chrono(self.confirm_within)),
        }));
        let render = |name: &str| {
            self.renderer
                .render(name, context.clone())
                .map_err(|e| format!("template: {e}"))
        };
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.public_url,
            self.key.token(id, &pending.unsubscribe_salt)
        );
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, pending.email.address().clone()))
            .subject(render("email/confirm/subject.txt.j2")?)
            .date(SystemTime::from(now))
            .message_id(Some(ids.confirmation(id)));
        let mut mail = list_headers(builder, &self.list_id, &unsubscribe)
            .multipart(MultiPart::alternative_plain_html(
                render("email/confirm/body.txt.j2")? + "\n",
                render("email/confirm/body.html.j2")? + "\n",
            ))
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        if let Some(dkim) = &self.dkim {
            mail.sign(dkim);
        }
        Ok(mail)
    }
}
