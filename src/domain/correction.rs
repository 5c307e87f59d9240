//! Corrections of published updates: what may be corrected, and the words that say so. Pure.
//!
//! An update's words are never edited in place. A correction keeps the original, adds the new
//! words and a reason, and is announced wherever the original went. Times are never touched:
//! a correction carries its own time, the update keeps its own.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::text::{format_time, Dating};
use super::{check_text, Invalid, UpdateKind, MAX_MESSAGE, MAX_REASON};

/// The checked words of a correction: the new text and the reason.
pub fn check(
    kind: UpdateKind,
    current: &str,
    message: &str,
    reason: &str,
) -> Result<(String, String), Invalid> {
    if kind == UpdateKind::Notice {
        return Err(Invalid::new(
            "update_id",
            "maintenance notices are corrected by editing the window",
        ));
    }
    let message = check_text("message", message, MAX_MESSAGE)?;
    let reason = check_text("reason", reason, MAX_REASON)?;
    if message == current.trim() {
        return Err(Invalid::new(
            "message",
            "is the same as the update's current words; a correction must change them",
        ));
    }
    Ok((message, reason))
}

/// "Corrected at Tue 24 Nov, 14:32 UTC: <reason>" — the line under a corrected update.
pub fn corrected_line(at: DateTime<Utc>, reason: &str, tz: Tz) -> String {
    format!(
        "Corrected at {}: {reason}",
        format_time(at, at, tz, Dating::Always)
    )
}

/// The post that announces a correction (a reply, a mail, a webhook's text).
pub fn announcement(
    original_posted_at: DateTime<Utc>,
    corrected: &str,
    reason: &str,
    tz: Tz,
) -> String {
    format!(
        "Correction to our update of {}. It now reads: \"{corrected}\"\n\nWhy: {reason}",
        format_time(original_posted_at, original_posted_at, tz, Dating::Always)
    )
}

/// The original post's words once edited in place (on networks that edit).
pub fn edited_body(corrected: &str, at: DateTime<Utc>, reason: &str, tz: Tz) -> String {
    format!("{corrected}\n\n({})", corrected_line(at, reason, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_correction_must_change_the_words_and_give_a_reason() {
        let ok = check(
            UpdateKind::Operator,
            "Payments down.",
            "Card payments down.",
            "Only cards",
        );
        assert_eq!(ok.unwrap().1, "Only cards");
        let same = check(
            UpdateKind::Operator,
            "Payments down.",
            " Payments down. ",
            "x",
        );
        assert_eq!(same.unwrap_err().field, "message");
        let no_reason = check(UpdateKind::Resolution, "a", "b", "  ");
        assert_eq!(no_reason.unwrap_err().field, "reason");
        assert!(check(UpdateKind::Notice, "a", "b", "c").is_err());
    }

    #[test]
    fn the_words_name_the_times() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 14, 32, 0).unwrap();
        assert_eq!(
            corrected_line(at, "we named the wrong region", chrono_tz::UTC),
            "Corrected at Tue 24 Nov, 14:32 UTC: we named the wrong region"
        );
        let posted = Utc.with_ymd_and_hms(2026, 11, 24, 14, 5, 0).unwrap();
        assert_eq!(
            announcement(posted, "EU is down.", "not US", chrono_tz::UTC),
            "Correction to our update of Tue 24 Nov, 14:05 UTC. It now reads: \"EU is down.\"\n\nWhy: not US"
        );
    }
}
