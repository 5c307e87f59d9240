//! Human wording of times and durations, in the site's time zone. The one formatter of times:
//! the status page, the console, feeds, emails and posts all word a time through here, so a
//! reader meets one format everywhere ("Tue 24 Nov, 14:30 UTC": weekday, day, month, 24-hour
//! time, zone) and never has to guess which day a time belongs to.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
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

/// At most `max` names joined with commas, then "and N more": a day's bar on the status page
/// names a few incidents, not every one of a bad day.
pub fn names_and_more(names: &[&str], max: usize) -> String {
    if names.len() <= max {
        return names.join(", ");
    }
    let rest = names.len() - max;
    format!(
        "{} and {rest} more incident{}",
        names[..max].join(", "),
        if rest == 1 { "" } else { "s" }
    )
}

/// How much of the day a time may leave to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dating {
    /// Always the day: for text that is stored or sent and read at an unknown later moment
    /// (updates, posts, emails, feeds). "Tue 24 Nov, 14:30 UTC".
    Always,
    /// "today", "yesterday" or "tomorrow" when that is what the day is, else the day: for
    /// documents rendered again as the clock moves (the status page, the console).
    /// "14:30 UTC today", "22:05 UTC yesterday", "Tue 24 Nov, 14:30 UTC".
    Relative,
}

/// "14:30 UTC": 24-hour time and the zone's abbreviation (a zone without one reads
/// "UTC-03", never a bare "-03").
fn clock(local: &DateTime<Tz>) -> String {
    let zone = local.format("%Z").to_string();
    let zone = if zone.starts_with(['+', '-']) {
        format!("UTC{zone}")
    } else {
        zone
    };
    format!("{} {zone}", local.format("%H:%M"))
}

/// "99.91": a percentage with two decimals, rounded down, so any loss at all reads below
/// "100.00" (an outage of minutes in 90 days would otherwise round up to a perfect record).
pub fn percent(p: f64) -> String {
    format!("{:.2}", (p * 100.0).floor() / 100.0)
}

/// "Wed 2 Dec 2026": a calendar day, the way every date reads.
pub fn human_date(d: NaiveDate) -> String {
    d.format("%a %-d %b %Y").to_string()
}

/// "Tue 24 Nov", with the year when it is not `this_year`'s.
fn day(d: NaiveDate, this_year: i32) -> String {
    if d.year() == this_year {
        d.format("%a %-d %b").to_string()
    } else {
        human_date(d)
    }
}

/// "today", "yesterday" or "tomorrow" when `d` is one of them relative to `today`.
fn near(d: NaiveDate, today: NaiveDate) -> Option<&'static str> {
    match (d - today).num_days() {
        0 => Some("today"),
        -1 => Some("yesterday"),
        1 => Some("tomorrow"),
        _ => None,
    }
}

/// A time in `tz`, dated as `dating` asks.
pub fn format_time(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz, dating: Dating) -> String {
    let local = t.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    match (dating, near(local.date_naive(), today)) {
        (Dating::Relative, Some(word)) => format!("{} {word}", clock(&local)),
        _ => format!(
            "{}, {}",
            day(local.date_naive(), today.year()),
            clock(&local)
        ),
    }
}

/// A time for text that is stored or sent: always with its day. "Tue 24 Nov, 14:30 UTC".
pub fn human_time(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    format_time(t, now, tz, Dating::Always)
}

/// A stretch of time, such as a maintenance window: "Thu 5 Dec, 02:00–04:00 UTC" within one
/// day, "Thu 5 Dec, 22:00 UTC to Fri 6 Dec, 02:00 UTC" across midnight (or across a change of
/// the zone's offset), "02:00–04:00 UTC today" when relative dating is asked for.
pub fn human_span(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
    dating: Dating,
) -> String {
    let (a, b) = (start.with_timezone(&tz), end.with_timezone(&tz));
    let same_zone = a.format("%Z").to_string() == b.format("%Z").to_string();
    if a.date_naive() != b.date_naive() || !same_zone {
        return format!(
            "{} to {}",
            format_time(start, now, tz, dating),
            format_time(end, now, tz, dating)
        );
    }
    let hours = format!("{}–{}", a.format("%H:%M"), clock(&b));
    let today = now.with_timezone(&tz).date_naive();
    match (dating, near(a.date_naive(), today)) {
        (Dating::Relative, Some(word)) => format!("{hours} {word}"),
        _ => format!("{}, {hours}", day(a.date_naive(), today.year())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bad_day_names_a_few_incidents_and_counts_the_rest() {
        use super::names_and_more;
        assert_eq!(names_and_more(&["A", "B"], 3), "A, B");
        assert_eq!(
            names_and_more(&["A", "B", "C", "D"], 3),
            "A, B, C and 1 more incident"
        );
        let many: Vec<&str> = std::iter::repeat_n("X", 5000).collect();
        assert_eq!(names_and_more(&many, 3), "X, X, X and 4997 more incidents");
    }

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

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn stored_text_always_carries_the_day() {
        let now = at(2026, 7, 1, 12, 0);
        let soon = at(2026, 7, 1, 13, 30);
        assert_eq!(
            human_time(soon, now, chrono_tz::UTC),
            "Wed 1 Jul, 13:30 UTC"
        );
        assert_eq!(
            human_time(soon, now, chrono_tz::Europe::London),
            "Wed 1 Jul, 14:30 BST"
        );
        assert_eq!(
            human_time(at(2026, 7, 2, 9, 0), now, chrono_tz::UTC),
            "Thu 2 Jul, 09:00 UTC"
        );
        // Another year says which.
        assert_eq!(
            human_time(
                at(2025, 12, 31, 23, 0),
                at(2026, 1, 1, 1, 0),
                chrono_tz::UTC
            ),
            "Wed 31 Dec 2025, 23:00 UTC"
        );
    }

    #[test]
    fn live_documents_say_today_yesterday_or_tomorrow_and_else_the_date() {
        let now = at(2026, 12, 2, 4, 0);
        let live = |t| format_time(t, now, chrono_tz::UTC, Dating::Relative);
        assert_eq!(live(at(2026, 12, 2, 3, 28)), "03:28 UTC today");
        assert_eq!(live(at(2026, 12, 1, 22, 5)), "22:05 UTC yesterday");
        assert_eq!(live(at(2026, 12, 3, 0, 0)), "00:00 UTC tomorrow");
        // Within the week, but not adjacent: the date, never a bare weekday that could be
        // last week's or next week's.
        assert_eq!(live(at(2026, 11, 29, 14, 30)), "Sun 29 Nov, 14:30 UTC");
        assert_eq!(live(at(2026, 12, 5, 2, 0)), "Sat 5 Dec, 02:00 UTC");
    }

    #[test]
    fn midnight_belongs_to_the_day_it_starts() {
        let now = at(2026, 12, 1, 23, 59);
        let live = |t| format_time(t, now, chrono_tz::UTC, Dating::Relative);
        assert_eq!(live(at(2026, 12, 1, 23, 59)), "23:59 UTC today");
        assert_eq!(live(at(2026, 12, 2, 0, 0)), "00:00 UTC tomorrow");
        // A minute later the same instants move back a day.
        let now = at(2026, 12, 2, 0, 0);
        let live = |t| format_time(t, now, chrono_tz::UTC, Dating::Relative);
        assert_eq!(live(at(2026, 12, 1, 23, 59)), "23:59 UTC yesterday");
        assert_eq!(live(at(2026, 12, 2, 0, 0)), "00:00 UTC today");
    }

    #[test]
    fn the_day_is_the_site_zone_day_not_utc() {
        // 03:28 UTC on 2 Dec is 22:28 on 1 Dec in New York: at 04:00 UTC a New York site says
        // "today" (it is still 1 Dec there), a UTC site says "today" for 2 Dec.
        let t = at(2026, 12, 2, 3, 28);
        let now = at(2026, 12, 2, 4, 0);
        let ny = chrono_tz::America::New_York;
        assert_eq!(format_time(t, now, ny, Dating::Relative), "22:28 EST today");
        assert_eq!(human_time(t, now, ny), "Tue 1 Dec, 22:28 EST");
        // Tokyo is already on 3 Dec for a time that is 2 Dec in UTC.
        let tokyo = chrono_tz::Asia::Tokyo;
        let evening = at(2026, 12, 2, 20, 0);
        assert_eq!(
            format_time(evening, at(2026, 12, 2, 10, 0), tokyo, Dating::Relative),
            "05:00 JST tomorrow"
        );
        assert_eq!(human_time(evening, now, tokyo), "Thu 3 Dec, 05:00 JST");
        // A zone without an abbreviation still names its offset.
        assert_eq!(
            human_time(t, now, chrono_tz::America::Sao_Paulo),
            "Wed 2 Dec, 00:28 UTC-03"
        );
    }

    #[test]
    fn daylight_saving_changes_are_named() {
        // London springs forward at 01:00 UTC on 29 Mar 2026: the same day reads GMT then BST.
        let london = chrono_tz::Europe::London;
        let now = at(2026, 3, 29, 12, 0);
        let live = |t| format_time(t, now, london, Dating::Relative);
        assert_eq!(live(at(2026, 3, 29, 0, 30)), "00:30 GMT today");
        assert_eq!(live(at(2026, 3, 29, 1, 30)), "02:30 BST today");
        // Falls back at 01:00 UTC on 25 Oct 2026: 01:30 happens twice, told apart by the zone.
        let now = at(2026, 10, 25, 12, 0);
        assert_eq!(
            human_time(at(2026, 10, 25, 0, 30), now, london),
            "Sun 25 Oct, 01:30 BST"
        );
        assert_eq!(
            human_time(at(2026, 10, 25, 1, 30), now, london),
            "Sun 25 Oct, 01:30 GMT"
        );
    }

    #[test]
    fn spans_read_as_one_window() {
        let now = at(2026, 12, 2, 4, 0);
        let utc = chrono_tz::UTC;
        let (s, e) = (at(2026, 12, 5, 2, 0), at(2026, 12, 5, 4, 0));
        assert_eq!(
            human_span(s, e, now, utc, Dating::Always),
            "Sat 5 Dec, 02:00–04:00 UTC"
        );
        assert_eq!(
            human_span(s, e, now, utc, Dating::Relative),
            "Sat 5 Dec, 02:00–04:00 UTC"
        );
        let (s, e) = (at(2026, 12, 2, 6, 0), at(2026, 12, 2, 7, 30));
        assert_eq!(
            human_span(s, e, now, utc, Dating::Relative),
            "06:00–07:30 UTC today"
        );
        // Across midnight both ends carry their day.
        let (s, e) = (at(2026, 12, 2, 22, 0), at(2026, 12, 3, 2, 0));
        assert_eq!(
            human_span(s, e, now, utc, Dating::Relative),
            "22:00 UTC today to 02:00 UTC tomorrow"
        );
        assert_eq!(
            human_span(s, e, now, utc, Dating::Always),
            "Wed 2 Dec, 22:00 UTC to Thu 3 Dec, 02:00 UTC"
        );
        // Across a change of offset both ends name their zone.
        let london = chrono_tz::Europe::London;
        assert_eq!(
            human_span(
                at(2026, 10, 25, 0, 0),
                at(2026, 10, 25, 2, 0),
                now,
                london,
                Dating::Always
            ),
            "Sun 25 Oct, 01:00 BST to Sun 25 Oct, 02:00 GMT"
        );
    }

    #[test]
    fn percentages_never_round_up_to_perfect() {
        assert_eq!(percent(100.0), "100.00");
        assert_eq!(percent(99.9999), "99.99");
        assert_eq!(percent(99.907), "99.90");
        assert_eq!(percent(0.0), "0.00");
    }

    #[test]
    fn dates_read_the_same_everywhere() {
        assert_eq!(
            human_date(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()),
            "Wed 2 Dec 2026"
        );
    }
}
