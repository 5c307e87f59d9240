//! What the status page says: the overall indicator and each component's daily availability,
//! computed from incident history. Pure: callers pass `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{ComponentStatus, Impact};

/// Atlassian Statuspage's page indicator, with its value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    None,
    Maintenance,
    Minor,
    Major,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Maintenance => "maintenance",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
        }
    }

    /// Statuspage's wording for each indicator.
    pub fn description(self) -> &'static str {
        match self {
            Indicator::None => "All Systems Operational",
            Indicator::Maintenance => "Service Under Maintenance",
            Indicator::Minor => "Minor Service Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major Service Outage",
        }
    }
}

/// The page's indicator: the worst of the components' statuses and the open incidents' impacts.
pub fn indicator(
    components: impl IntoIterator<Item = ComponentStatus>,
    open_impacts: impl IntoIterator<Item = Impact>,
) -> Indicator {
    let from_components = components.into_iter().map(|s| match s {
        ComponentStatus::Operational => Indicator::None,
        ComponentStatus::UnderMaintenance => Indicator::Maintenance,
        ComponentStatus::DegradedPerformance => Indicator::Minor,
        ComponentStatus::PartialOutage => Indicator::Major,
        ComponentStatus::MajorOutage => Indicator::Critical,
    });
    let from_incidents = open_impacts.into_iter().map(|i| match i {
        Impact::None => Indicator::None,
        Impact::Minor => Indicator::Minor,
        Impact::Major => Indicator::Major,
        Impact::Critical => Indicator::Critical,
    });
    from_components
        .chain(from_incidents)
        .max()
        .unwrap_or(Indicator::None)
}

/// Each component's current status: the worst any open incident gives it. `statuses` are the
/// (component, status) pairs of the open incidents; components not named are operational.
pub fn current(
    statuses: impl IntoIterator<Item = (String, ComponentStatus)>,
) -> BTreeMap<String, ComponentStatus> {
    let mut out: BTreeMap<String, ComponentStatus> = BTreeMap::new();
    for (component, status) in statuses {
        let e = out.entry(component).or_insert(ComponentStatus::Operational);
        if status.severity() > e.severity() {
            *e = status;
        }
    }
    out
}

/// A stretch of time during which one incident held a component at one status.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub status: ComponentStatus,
    pub incident_id: i64,
    pub title: String,
}

/// The stretches of one incident, per component, from its updates (each update's component
/// statuses hold until the next update; the last holds until `end`, the resolution or now).
pub fn stretches(
    incident_id: i64,
    title: &str,
    updates: &[(DateTime<Utc>, BTreeMap<String, ComponentStatus>)],
    end: DateTime<Utc>,
) -> BTreeMap<String, Vec<Stretch>> {
    let mut out: BTreeMap<String, Vec<Stretch>> = BTreeMap::new();
    for (i, (at, comps)) in updates.iter().enumerate() {
        let until = updates.get(i + 1).map(|(t, _)| *t).unwrap_or(end);
        if until <= *at {
            continue;
        }
        for (component, status) in comps {
            if *status == ComponentStatus::Operational {
                continue;
            }
            out.entry(component.clone()).or_default().push(Stretch {
                from: *at,
                to: until,
                status: *status,
                incident_id,
                title: title.to_string(),
            });
        }
    }
    out
}

/// One day of one component's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    /// The worst status seen that day (operational if none).
    pub worst: ComponentStatus,
    /// Minutes during which the component was not operational (maintenance excluded).
    pub minutes: i64,
    /// Uptime of the day, weighed as [`uptime_percent`] weighs it; for today, of the part of
    /// the day that has passed, so an outage under way counts as it happens.
    pub uptime: f64,
    /// The incidents that touched it that day, by id and title.
    pub incidents: Vec<(i64, String)>,
}

/// The first instant of `date` in `tz` (the first instant after a gap, where a zone skips
/// midnight).
fn midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight");
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(naive + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| naive.and_utc())
}

/// Seconds lost in `[from, to)`, as Statuspage weighs them: a major outage counts fully, a
/// partial outage at 30%, degraded performance and maintenance not at all.
fn lost_seconds(stretches: &[Stretch], from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    stretches
        .iter()
        .map(|s| {
            let secs = (s.to.min(to) - s.from.max(from)).num_seconds().max(0) as f64;
            match s.status {
                ComponentStatus::MajorOutage => secs,
                ComponentStatus::PartialOutage => secs * 0.3,
                _ => 0.0,
            }
        })
        .sum()
}

fn percent_up(lost: f64, total: f64) -> f64 {
    if total <= 0.0 {
        return 100.0;
    }
    (100.0 * (1.0 - lost / total)).clamp(0.0, 100.0)
}

/// The last `n` days of the site's zone `tz` ending with today's, oldest first. Today runs
/// until `now`: a stretch still open counts up to this moment.
pub fn days(stretches: &[Stretch], now: DateTime<Utc>, n: u32, tz: Tz) -> Vec<Day> {
    let today = now.with_timezone(&tz).date_naive();
    (0..n)
        .rev()
        .map(|back| {
            let date = today - Duration::days(i64::from(back));
            let start = midnight(date, tz);
            let end = midnight(date + Duration::days(1), tz).min(now);
            let mut day = Day {
                date,
                worst: ComponentStatus::Operational,
                minutes: 0,
                uptime: percent_up(
                    lost_seconds(stretches, start, end),
                    (end - start).num_seconds() as f64,
                ),
                incidents: Vec::new(),
            };
            for s in stretches {
                let from = s.from.max(start);
                let to = s.to.min(end);
                if to <= from {
                    continue;
                }
                if s.status.severity() > day.worst.severity() {
                    day.worst = s.status;
                }
                if s.status != ComponentStatus::UnderMaintenance {
                    day.minutes += (to - from).num_minutes().max(1);
                }
                if !day.incidents.iter().any(|(id, _)| *id == s.incident_id) {
                    day.incidents.push((s.incident_id, s.title.clone()));
                }
            }
            day
        })
        .collect()
}

/// Uptime over the days, as Statuspage weighs it: a major outage counts fully, a partial
/// outage at 30%, degraded performance and maintenance not at all.
pub fn uptime_percent(stretches: &[Stretch], now: DateTime<Utc>, n: u32) -> f64 {
    let window_start = now - Duration::days(i64::from(n));
    percent_up(
        lost_seconds(stretches, window_start, now),
        (now - window_start).num_seconds() as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    #[test]
    fn the_indicator_is_the_worst_of_components_and_incidents() {
        use ComponentStatus::*;
        assert_eq!(indicator([Operational, Operational], []), Indicator::None);
        assert_eq!(indicator([DegradedPerformance], []), Indicator::Minor);
        assert_eq!(indicator([Operational], [Impact::Major]), Indicator::Major);
        assert_eq!(
            indicator([MajorOutage], [Impact::Minor]),
            Indicator::Critical
        );
        assert_eq!(indicator([UnderMaintenance], []), Indicator::Maintenance);
        assert_eq!(
            indicator([UnderMaintenance, PartialOutage], []),
            Indicator::Major
        );
        assert_eq!(Indicator::None.description(), "All Systems Operational");
    }

    #[test]
    fn stretches_follow_the_updates() {
        let ups = vec![
            (
                t(20, 10, 0),
                BTreeMap::from([("api".to_string(), ComponentStatus::MajorOutage)]),
            ),
            (
                t(20, 10, 30),
                BTreeMap::from([("api".to_string(), ComponentStatus::DegradedPerformance)]),
            ),
            (
                t(20, 11, 0),
                BTreeMap::from([("api".to_string(), ComponentStatus::Operational)]),
            ),
        ];
        let s = stretches(7, "API down", &ups, t(20, 11, 0));
        let api = &s["api"];
        assert_eq!(api.len(), 2);
        assert_eq!(
            (api[0].from, api[0].to, api[0].status),
            (t(20, 10, 0), t(20, 10, 30), ComponentStatus::MajorOutage)
        );
        assert_eq!(api[1].status, ComponentStatus::DegradedPerformance);
    }

    #[test]
    fn days_split_at_midnight_and_name_the_incidents() {
        let s = vec![Stretch {
            from: t(20, 23, 0),
            to: t(21, 1, 0),
            status: ComponentStatus::PartialOutage,
            incident_id: 3,
            title: "Slow".into(),
        }];
        let d = days(&s, t(22, 12, 0), 3, chrono_tz::UTC);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].date, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        assert_eq!(
            (d[0].minutes, d[0].worst),
            (60, ComponentStatus::PartialOutage)
        );
        assert_eq!(d[1].minutes, 60);
        assert_eq!(d[1].incidents, vec![(3, "Slow".to_string())]);
        assert_eq!(
            (d[2].minutes, d[2].worst),
            (0, ComponentStatus::Operational)
        );
        let up = uptime_percent(&s, t(22, 12, 0), 90);
        assert!((up - (100.0 * (1.0 - 0.3 * 7200.0 / (90.0 * 86400.0)))).abs() < 1e-9);
    }

    #[test]
    fn an_outage_under_way_counts_today_as_it_happens() {
        // A major outage began two hours ago and is still open: its stretch ends now.
        let now = t(22, 12, 0);
        let ups = vec![(
            t(22, 10, 0),
            BTreeMap::from([("api".to_string(), ComponentStatus::MajorOutage)]),
        )];
        let s = stretches(9, "API down", &ups, now).remove("api").unwrap();
        let d = days(&s, now, 90, chrono_tz::UTC);
        let today = d.last().unwrap();
        assert_eq!(today.date, now.date_naive());
        assert_eq!(
            (today.worst, today.minutes),
            (ComponentStatus::MajorOutage, 120)
        );
        // Two hours down of the twelve gone today.
        assert!((today.uptime - 100.0 * 10.0 / 12.0).abs() < 1e-9);
        assert!(uptime_percent(&s, now, 90) < 100.0);
        // The days before are whole and untouched.
        assert_eq!(d[88].uptime, 100.0);
    }

    #[test]
    fn days_are_the_site_zone_days() {
        // 23:00-01:00 UTC is 18:00-20:00 in New York: all on one New York day.
        let s = vec![Stretch {
            from: t(20, 23, 0),
            to: t(21, 1, 0),
            status: ComponentStatus::MajorOutage,
            incident_id: 3,
            title: "Down".into(),
        }];
        let d = days(&s, t(22, 12, 0), 3, chrono_tz::America::New_York);
        assert_eq!(d[0].date, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        assert_eq!(d[0].minutes, 120);
        assert_eq!(d[1].minutes, 0);
        assert!((d[0].uptime - 100.0 * 22.0 / 24.0).abs() < 1e-9);
    }
}
