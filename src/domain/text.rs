//! Human wording of times and durations, in the site's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// "1 hour 5 minutes", "40 minutes", "2 days 3 hours", "less than a minute".
pub fn human_duration(d: chrono::Duration) -> String {
    let mins = d.num_minutes().max(0);
    if mins == 0 {
        return "less than a minute".into();
    }
    let (days, hours, minutes) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    let part = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(part(days, "day"));
    }
    if hours > 0 {
        parts.push(part(hours, "hour"));
    }
    if minutes > 0 && days == 0 {
        parts.push(part(minutes, "minute"));
    }
    parts.join(" ")
}

/// "14:30 UTC" when `t` falls on the same local day as `now`, else "Tue 24 Nov 14:30 UTC".
pub fn human_time(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M %Z").to_string()
    } else {
        local.format("%a %-d %b %H:%M %Z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(
            human_duration(chrono::Duration::minutes(65)),
            "1 hour 5 minutes"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(40)), "40 minutes");
        assert_eq!(
            human_duration(chrono::Duration::seconds(20)),
            "less than a minute"
        );
        assert_eq!(
            human_duration(chrono::Duration::minutes(3 * 1440 + 61)),
            "3 days 1 hour"
        );
    }

    #[test]
    fn times_in_the_site_zone() {
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 13, 30, 0).unwrap();
        assert_eq!(human_time(t, now, chrono_tz::UTC), "13:30 UTC");
        assert_eq!(human_time(t, now, chrono_tz::Europe::London), "14:30 BST");
        let tomorrow = Utc.with_ymd_and_hms(2026, 7, 2, 9, 0, 0).unwrap();
        assert_eq!(
            human_time(tomorrow, now, chrono_tz::UTC),
            "Thu 2 Jul 09:00 UTC"
        );
    }
}
