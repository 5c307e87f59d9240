//! What a scheduled maintenance window is owed, and the calendar arithmetic around it: advance
//! notices, the start, recurring windows from cron expressions, and peak-hour warnings. Pure:
//! every function takes `now`.
//!
//! A window's life: `scheduled` (announced; notices go out at configured offsets before the
//! start), `in_progress` (components under maintenance; the end is the estimate, so an overrun
//! is the incident scheduler's apology), `verifying` (optional), then `completed` or, before it
//! starts, `cancelled`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};

use super::{to_chrono, IncidentStatus, Invalid};

/// The parts of a window that its notices depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    pub status: IncidentStatus,
    pub starts_at: DateTime<Utc>,
    /// The due time of the newest notice already sent (the scheduling announcement counts as
    /// one at the moment it was made, so offsets that had passed by then are not sent late).
    pub last_notice_at: Option<DateTime<Utc>>,
}

/// One thing the scheduler must do for a window now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceDue {
    /// An advance notice, `before` ahead of the start.
    Notice { at: DateTime<Utc>, before: Duration },
    /// The window starts: components go under maintenance.
    Start { at: DateTime<Utc> },
}

impl MaintenanceDue {
    /// The action's name and due time: with the window's id, the key that makes it happen
    /// exactly once however many schedulers race for it.
    pub fn key(&self) -> (&'static str, DateTime<Utc>) {
        match *self {
            MaintenanceDue::Notice { at, .. } => ("maintenance_notice", at),
            MaintenanceDue::Start { at } => ("maintenance_start", at),
        }
    }
}

/// What a scheduled window is owed at `now`. Only the newest passed notice is sent (after an
/// outage of the scheduler, "in 1 hour" replaces a stale "in 24 hours").
pub fn due(w: &WindowState, notices: &[Duration], now: DateTime<Utc>) -> Option<MaintenanceDue> {
    if w.status != IncidentStatus::Scheduled {
        return None;
    }
    if now >= w.starts_at {
        return Some(MaintenanceDue::Start { at: w.starts_at });
    }
    notices
        .iter()
        .map(|before| (w.starts_at - to_chrono(*before), *before))
        .filter(|(at, _)| *at <= now && w.last_notice_at.is_none_or(|last| *at > last))
        .max_by_key(|(at, _)| *at)
        .map(|(at, before)| MaintenanceDue::Notice { at, before })
}

/// A cron schedule as operators write it (five fields: minute hour day-of-month month
/// day-of-week, 0 or 7 = Sunday), converted for the `cron` crate (which wants seconds first and
/// counts weekdays from 1 = Sunday).
pub fn parse_cron(field: &str, expr: &str) -> Result<cron::Schedule, Invalid> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(Invalid::new(
            field,
            format!(
                "`{expr}` has {} fields; write five: minute hour day-of-month month day-of-week \
                 (e.g. `0 2 * * SUN`)",
                parts.len()
            ),
        ));
    }
    let dow = convert_weekdays(parts[4]).ok_or_else(|| {
        Invalid::new(
            field,
            format!(
                "day-of-week `{}` is not valid; use 0-7 or names like SUN, MON-FRI",
                parts[4]
            ),
        )
    })?;
    let six = format!(
        "0 {} {} {} {} {dow}",
        parts[0], parts[1], parts[2], parts[3]
    );
    cron::Schedule::from_str(&six)
        .map_err(|e| Invalid::new(field, format!("`{expr}` is not a cron expression: {e}")))
}

/// Maps standard weekday numbers (0-7, Sunday = 0 or 7) to the cron crate's (1-7, Sunday = 1).
/// Names and `*` pass through.
fn convert_weekdays(f: &str) -> Option<String> {
    let num = |s: &str| -> Option<Option<u32>> {
        if s.chars().all(|c| c.is_ascii_digit()) {
            let n: u32 = s.parse().ok()?;
            (n <= 7).then_some(Some(n % 7 + 1))
        } else {
            Some(None)
        }
    };
    let mut out = Vec::new();
    for item in f.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let converted = match range.split_once('-') {
            Some((a, b)) => match (num(a)?, num(b)?) {
                // e.g. `5-7` (Friday to Sunday) becomes `6-7,1`.
                (Some(x), Some(1)) if x > 1 && step.is_none() => format!("{x}-7,1"),
                (Some(x), Some(y)) if x > y => return None,
                (Some(x), Some(y)) => format!("{x}-{y}"),
                (None, None) => range.to_string(),
                _ => return None,
            },
            None => match num(range)? {
                Some(x) => x.to_string(),
                None => range.to_string(),
            },
        };
        out.push(match step {
            Some(s) => format!("{converted}/{s}"),
            None => converted,
        });
    }
    Some(out.join(","))
}

/// The starts of a recurring window in `(after, until]`, evaluated on its zone's wall clock
/// (so "every Sunday 02:00 Europe/London" is 01:00 UTC in summer and 02:00 UTC in winter). A
/// wall time that happens twice when clocks go back counts once (the first); one that does not
/// exist when clocks go forward moves to the end of the gap, as cron daemons do.
pub fn occurrences(
    schedule: &cron::Schedule,
    zone: &chrono_tz::Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    // The cron crate walks absolute time, which skips or repeats wall times around a change;
    // walk the wall clock instead (naive local times, carried as UTC), then place each in the zone.
    let margin = chrono::Duration::hours(3);
    let from = after.with_timezone(zone).naive_local() - margin;
    let to = until.with_timezone(zone).naive_local() + margin;
    let mut out: Vec<DateTime<Utc>> = schedule
        .after(&Utc.from_utc_datetime(&from))
        .map(|t| t.naive_utc())
        .take_while(|n| *n <= to)
        .take(5_000)
        .filter_map(|n| place(zone, n))
        .filter(|t| *t > after && *t <= until)
        .collect();
    out.dedup();
    out
}

/// A wall time in a zone: the first of two, or the end of a gap.
fn place(zone: &chrono_tz::Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => (1..=24 * 60).find_map(|m| {
            zone.from_local_datetime(&(local + chrono::Duration::minutes(m)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
    }
}

/// A service's busy hours: on these days, from `from` to `to`, in `zone`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakHours {
    pub name: String,
    pub days: Vec<Weekday>,
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub zone: chrono_tz::Tz,
}

impl PeakHours {
    /// Whether `[start, end)` overlaps these hours on any day.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let first = start.with_timezone(&self.zone).date_naive() - chrono::Days::new(1);
        let last = end.with_timezone(&self.zone).date_naive();
        let mut day: NaiveDate = first;
        while day <= last {
            if self.days.contains(&day.weekday()) {
                let local = |t: NaiveTime| {
                    self.zone
                        .from_local_datetime(&day.and_time(t))
                        .earliest()
                        .map(|d| d.with_timezone(&Utc))
                };
                let peak_end_day = if self.to <= self.from {
                    day.succ_opt().unwrap_or(day)
                } else {
                    day
                };
                let p_start = local(self.from);
                let p_end = self
                    .zone
                    .from_local_datetime(&peak_end_day.and_time(self.to))
                    .earliest()
                    .map(|d| d.with_timezone(&Utc));
                if let (Some(ps), Some(pe)) = (p_start, p_end) {
                    if start < pe && ps < end {
                        return true;
                    }
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }
    const DAY: Duration = Duration::from_secs(86_400);
    const HOUR: Duration = Duration::from_secs(3_600);

    fn window(last: Option<DateTime<Utc>>) -> WindowState {
        WindowState {
            status: IncidentStatus::Scheduled,
            starts_at: t(25, 2, 0),
            last_notice_at: last,
        }
    }

    #[test]
    fn notices_fall_due_at_their_offsets_once_each() {
        let w = window(Some(t(20, 9, 0)));
        assert_eq!(due(&w, &[DAY, HOUR], t(23, 12, 0)), None);
        assert_eq!(
            due(&w, &[DAY, HOUR], t(24, 2, 0)),
            Some(MaintenanceDue::Notice {
                at: t(24, 2, 0),
                before: DAY
            })
        );
        let sent = window(Some(t(24, 2, 0)));
        assert_eq!(due(&sent, &[DAY, HOUR], t(24, 3, 0)), None);
        assert_eq!(
            due(&sent, &[DAY, HOUR], t(25, 1, 0)),
            Some(MaintenanceDue::Notice {
                at: t(25, 1, 0),
                before: HOUR
            })
        );
        assert_eq!(
            due(&sent, &[DAY, HOUR], t(25, 2, 0)),
            Some(MaintenanceDue::Start { at: t(25, 2, 0) })
        );
    }

    #[test]
    fn offsets_passed_before_the_announcement_are_not_sent_late() {
        // Scheduled 30 minutes before the start: neither the 24 h nor the 1 h notice applies.
        let w = window(Some(t(25, 1, 30)));
        assert_eq!(due(&w, &[DAY, HOUR], t(25, 1, 45)), None);
    }

    #[test]
    fn five_field_cron_with_numeric_weekdays_converts() {
        let s = parse_cron("cron", "0 2 * * 0").unwrap();
        let zone = chrono_tz::Europe::London;
        let got = occurrences(&s, &zone, t(20, 0, 0), t(30, 0, 0));
        // 22 and 29 November 2026 are Sundays (GMT).
        assert_eq!(got, vec![t(22, 2, 0), t(29, 2, 0)]);
        assert!(parse_cron("cron", "0 2 * * 1-5").is_ok());
        assert!(parse_cron("cron", "0 2 * * 5-7").is_ok());
        let e = parse_cron("maintenance.recurring[0].cron", "0 0 2 * * SUN").unwrap_err();
        assert!(e.to_string().contains("has 6 fields"), "{e}");
        assert!(parse_cron("cron", "0 25 * * *").is_err());
    }

    #[test]
    fn peak_hours_overlap_in_their_own_zone() {
        let p = PeakHours {
            name: "Black Friday".into(),
            days: vec![Weekday::Fri],
            from: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            to: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            zone: chrono_tz::America::New_York,
        };
        // Friday 27 Nov 2026, 09:00 New York = 14:00 UTC.
        assert!(p.overlaps(t(27, 13, 0), t(27, 15, 0)));
        assert!(!p.overlaps(t(27, 12, 0), t(27, 14, 0)));
        assert!(!p.overlaps(t(28, 14, 0), t(28, 16, 0)));
    }
}

#[cfg(test)]
mod dst_edges {
    use super::*;
    use chrono::TimeZone;

    fn utc(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn a_local_time_that_happens_twice_gives_one_window() {
        // 25 Oct 2026, London: 01:30 happens twice (BST, then GMT); the first one counts.
        let s = parse_cron("cron", "30 1 * * SUN").unwrap();
        let london = chrono_tz::Europe::London;
        let got = occurrences(&s, &london, utc(10, 24, 0, 0), utc(10, 26, 0, 0));
        assert_eq!(got, vec![utc(10, 25, 0, 30)]);
    }

    #[test]
    fn a_local_time_that_does_not_exist_moves_to_the_end_of_the_gap() {
        // 29 Mar 2026, London: clocks jump from 01:00 to 02:00 BST; 01:30 becomes 02:00 BST.
        let s = parse_cron("cron", "30 1 * * SUN").unwrap();
        let london = chrono_tz::Europe::London;
        let got = occurrences(&s, &london, utc(3, 28, 0, 0), utc(3, 30, 0, 0));
        assert_eq!(got, vec![utc(3, 29, 1, 0)]);
    }
}
