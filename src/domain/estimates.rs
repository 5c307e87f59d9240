//! What history says about an estimate: how long past incidents of this impact took to resolve,
//! how far the team's first estimates were off, and a calibrated suggestion. Pure: the caller
//! reads the history and passes it in.

use serde::Serialize;

use super::text::human_duration;
use super::Impact;

/// Past incidents needed before any figure is given.
pub const MIN_SAMPLE: usize = 3;
/// Past incidents touching the asked-for components needed before narrowing to them.
pub const MIN_NARROW: usize = 5;

/// One resolved incident, as the estimate needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastIncident {
    pub impact: Impact,
    pub components: Vec<String>,
    /// Minutes from start to resolution.
    pub minutes_to_resolve: f64,
    /// The first estimate given: minutes from when it was given to the ETA it named, and the
    /// minutes it actually took from then to resolution.
    pub first_estimate: Option<(f64, f64)>,
}

impl PastIncident {
    /// How far the first estimate was off: the time the fix actually took ÷ the time the first
    /// estimate named, both counted from when that estimate was given (1 is exact, above 1 too
    /// hopeful). `None` without a first estimate, or for one that named a time already past.
    /// The one definition of estimate accuracy: the estimates API, the console's declare form
    /// and the `/metrics` gauges all use it.
    pub fn overrun_ratio(&self) -> Option<f64> {
        let (estimated, actual) = self.first_estimate?;
        (estimated > 0.0).then(|| actual / estimated)
    }
}

/// The figures, and a suggestion with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Estimates {
    pub impact: Impact,
    pub components: Vec<String>,
    /// `components` when the figures come from incidents touching those components,
    /// `impact` when from every incident of this impact, `none` when history is too thin.
    #[schema(value_type = String, pattern = "^(components|impact|none)$")]
    pub scope: &'static str,
    pub sample_size: usize,
    pub median_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    /// How many incidents in the sample had a first estimate.
    pub estimated_sample_size: usize,
    /// Median of actual ÷ first estimate (above 1: estimates have been too hopeful).
    pub median_overrun_ratio: Option<f64>,
    /// The ETA, in minutes from now, that history suggests.
    pub suggested_minutes: Option<f64>,
    /// One sentence saying why.
    pub explanation: String,
}

/// The value below which `q` of `sorted` lies (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn minutes_text(m: f64) -> String {
    human_duration(chrono::Duration::minutes(m.round() as i64))
}

/// The figures for an incident of `impact` affecting `components`, given `history` and the
/// operator's own estimate in minutes (if one was entered).
pub fn estimate(
    history: &[PastIncident],
    impact: Impact,
    components: &[String],
    entered_minutes: Option<f64>,
) -> Estimates {
    let same_impact: Vec<&PastIncident> = history.iter().filter(|p| p.impact == impact).collect();
    let narrowed: Vec<&PastIncident> = same_impact
        .iter()
        .copied()
        .filter(|p| !components.is_empty() && p.components.iter().any(|c| components.contains(c)))
        .collect();
    let (scope, sample) = if narrowed.len() >= MIN_NARROW {
        ("components", narrowed)
    } else {
        ("impact", same_impact)
    };
    let mut out = Estimates {
        impact,
        components: components.to_vec(),
        scope,
        sample_size: sample.len(),
        median_minutes: None,
        p90_minutes: None,
        estimated_sample_size: 0,
        median_overrun_ratio: None,
        suggested_minutes: None,
        explanation: String::new(),
    };
    if sample.len() < MIN_SAMPLE {
        out.scope = "none";
        out.explanation = match sample.len() {
            0 => format!(
                "No past {} incidents yet to learn from; give your own best estimate.",
                impact.as_str()
            ),
            n => format!(
                "Only {n} past {} incident{} to learn from; give your own best estimate.",
                impact.as_str(),
                if n == 1 { "" } else { "s" }
            ),
        };
        return out;
    }
    let durations = sorted(sample.iter().map(|p| p.minutes_to_resolve).collect());
    let ratios = sorted(sample.iter().filter_map(|p| p.overrun_ratio()).collect());
    let med = median(&durations);
    out.median_minutes = med;
    out.p90_minutes = quantile(&durations, 0.9);
    out.estimated_sample_size = ratios.len();
    out.median_overrun_ratio = if ratios.len() >= MIN_SAMPLE {
        median(&ratios)
    } else {
        None
    };
    let what = match scope {
        "components" => format!(
            "{} past {} incidents on these components",
            sample.len(),
            impact.as_str()
        ),
        _ => format!("{} past {} incidents", sample.len(), impact.as_str()),
    };
    let med = med.unwrap_or_default();
    let p90 = out.p90_minutes.unwrap_or_default();
    match (
        entered_minutes.filter(|m| *m > 0.0),
        out.median_overrun_ratio,
    ) {
        (Some(entered), Some(ratio)) => {
            let suggested = (entered * ratio).max(1.0);
            out.suggested_minutes = Some(suggested);
            let drift = if ratio > 1.05 {
                format!("took {ratio:.1}× as long as first estimated")
            } else if ratio < 0.95 {
                format!("took {ratio:.1}× the first estimate (estimates ran long)")
            } else {
                "took about as long as first estimated".to_string()
            };
            out.explanation = format!(
                "Across {what}, fixes {drift} (median); your {} becomes {}. Half were resolved within {}, nine in ten within {}.",
                minutes_text(entered),
                minutes_text(suggested),
                minutes_text(med),
                minutes_text(p90),
            );
        }
        (entered, _) => {
            out.suggested_minutes = Some(med.max(1.0));
            let about_entered = match entered {
                Some(e) if e < med => format!(" Your {} is shorter than most.", minutes_text(e)),
                Some(e) if e > p90 => {
                    format!(" Your {} is longer than nine in ten.", minutes_text(e))
                }
                _ => String::new(),
            };
            out.explanation = format!(
                "Across {what}, half were resolved within {} and nine in ten within {}; too few had a first estimate to correct yours, so the median is suggested.{about_entered}",
                minutes_text(med),
                minutes_text(p90),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn past(impact: Impact, comps: &[&str], minutes: f64, est: Option<f64>) -> PastIncident {
        PastIncident {
            impact,
            components: comps.iter().map(|c| c.to_string()).collect(),
            minutes_to_resolve: minutes,
            first_estimate: est.map(|e| (e, minutes)),
        }
    }

    #[test]
    fn too_little_history_gives_no_figures() {
        let h = vec![past(Impact::Major, &["api"], 60.0, Some(30.0))];
        let e = estimate(&h, Impact::Major, &[], Some(30.0));
        assert_eq!(e.scope, "none");
        assert_eq!(e.median_minutes, None);
        assert!(e.explanation.contains("Only 1 past major incident"));
        let none = estimate(&h, Impact::Minor, &[], None);
        assert_eq!(
            none.explanation,
            "No past minor incidents yet to learn from; give your own best estimate.",
            "never \"Only 0 past ...\""
        );
    }

    #[test]
    fn median_p90_and_overrun() {
        // Five major incidents: 30, 60, 90, 120, 240 minutes; estimates all half the actual.
        let h: Vec<_> = [30.0, 60.0, 90.0, 120.0, 240.0]
            .iter()
            .map(|m| past(Impact::Major, &["web"], *m, Some(m / 2.0)))
            .chain([past(Impact::Minor, &["web"], 5.0, None)])
            .collect();
        let e = estimate(&h, Impact::Major, &["api".to_string()], Some(60.0));
        assert_eq!(e.scope, "impact");
        assert_eq!(e.sample_size, 5);
        assert_eq!(e.median_minutes, Some(90.0));
        assert_eq!(e.p90_minutes, Some(240.0));
        assert_eq!(e.median_overrun_ratio, Some(2.0));
        assert_eq!(e.suggested_minutes, Some(120.0));
        assert!(e.explanation.contains("2.0× as long"), "{}", e.explanation);
        assert!(
            e.explanation.contains("your 1 hour becomes 2 hours"),
            "{}",
            e.explanation
        );
    }

    #[test]
    fn narrows_to_components_when_there_are_enough() {
        let mut h: Vec<_> = (0..5)
            .map(|i| past(Impact::Major, &["api"], 10.0 + i as f64, None))
            .collect();
        h.extend((0..5).map(|_| past(Impact::Major, &["web"], 500.0, None)));
        let e = estimate(&h, Impact::Major, &["api".to_string()], None);
        assert_eq!(e.scope, "components");
        assert_eq!(e.sample_size, 5);
        assert_eq!(e.median_minutes, Some(12.0));
        assert_eq!(e.suggested_minutes, Some(12.0));
        let wide = estimate(&h, Impact::Major, &[], None);
        assert_eq!(wide.scope, "impact");
        assert_eq!(wide.sample_size, 10);
    }
}
