//! `/metrics` for Prometheus (prometheus-client, the official Rust client; one registry per app).
//!
//! Two kinds of figures:
//! - counters of what this instance did (deliveries by channel and outcome, promises kept or
//!   not, apologies, HTTP latency by route): Prometheus sums them across instances;
//! - facts read from the database at scrape time (outbox depth and the age of the oldest
//!   unfinished delivery per channel, estimate accuracy of resolved incidents): the same on
//!   every instance.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Duration, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::{from_ms, Conn, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What happened to a promised update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promise {
    /// A person wrote before the promised time.
    Kept,
    /// A person wrote, but after the promised time (before the holding update went out).
    Late,
    /// Nobody wrote; Candor posted a holding update.
    HoldingUpdate,
}

impl Promise {
    fn label(self) -> &'static str {
        match self {
            Promise::Kept => "kept",
            Promise::Late => "late",
            Promise::HoldingUpdate => "holding_update",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    promises: Family<OutcomeLabels, Counter>,
    apologies: Counter,
    http: HistogramFamily<HttpLabels>,
    outbox_depth: Family<ChannelLabels, Gauge>,
    outbox_oldest: Family<ChannelLabels, FloatGauge>,
    estimate_median: FloatGauge,
    estimate_p90: FloatGauge,
    estimates: Gauge,
    inbox_conversations: Gauge,
    inbox_answered: FloatGauge,
    inbox_closed: FloatGauge,
    inbox_first_answer: FloatGauge,
    mirror_written: Family<MirrorLabels, Counter>,
    mirror_age: Family<MirrorLabels, FloatGauge>,
    mirror_behind: Family<MirrorLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabels {
    mirror: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("candor");
        let m = Self {
            deliveries: Family::default(),
            promises: Family::default(),
            apologies: Counter::default(),
            http: Family::new_with_constructor(latency_histogram),
            outbox_depth: Family::default(),
            outbox_oldest: Family::default(),
            estimate_median: FloatGauge::default(),
            estimate_p90: FloatGauge::default(),
            estimates: Gauge::default(),
            inbox_conversations: Gauge::default(),
            inbox_answered: FloatGauge::default(),
            inbox_closed: FloatGauge::default(),
            inbox_first_answer: FloatGauge::default(),
            mirror_written: Family::default(),
            mirror_age: Family::default(),
            mirror_behind: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "deliveries",
            "Delivery attempts by channel and outcome (delivered, retry, dead)",
            m.deliveries.clone(),
        );
        registry.register(
            "promises",
            "Promised public updates by outcome: kept (written in time), late (written after the promised time), holding_update (nobody wrote; Candor did)",
            m.promises.clone(),
        );
        registry.register(
            "apologies",
            "Public apologies for an estimate that passed",
            m.apologies.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, matched route and status class",
            m.http.clone(),
        );
        registry.register(
            "outbox_depth",
            "Deliveries not yet finished (pending or in flight), by channel",
            m.outbox_depth.clone(),
        );
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest unfinished delivery, by channel (0 when none)",
            m.outbox_oldest.clone(),
        );
        registry.register(
            "estimate_accuracy_median_ratio",
            "Median of actual / first estimated time to resolve, both from when the first estimate was given, resolved incidents of the last 90 days (1 is perfect, above 1 is optimistic; NaN when no such incident)",
            m.estimate_median.clone(),
        );
        registry.register(
            "estimate_accuracy_p90_ratio",
            "90th percentile of actual / first estimated time to resolve, last 90 days (NaN when no such incident)",
            m.estimate_p90.clone(),
        );
        registry.register(
            "estimate_accuracy_incidents",
            "Resolved incidents of the last 90 days that had an estimate",
            m.estimates.clone(),
        );
        registry.register(
            "inbox_conversations",
            "Customers' conversations in the inbox (one per incident, channel and author), as far as retention keeps them",
            m.inbox_conversations.clone(),
        );
        registry.register(
            "inbox_answered_ratio",
            "Share of inbox conversations answered by the team (NaN when there are none)",
            m.inbox_answered.clone(),
        );
        registry.register(
            "inbox_closed_ratio",
            "Share of answered conversations of resolved incidents told it is fixed (NaN when there are none)",
            m.inbox_closed.clone(),
        );
        registry.register(
            "inbox_first_answer_seconds",
            "Mean time from a customer's first post to the team's first answer, answered conversations (NaN when there are none)",
            m.inbox_first_answer.clone(),
        );
        registry.register(
            "mirror_objects_written",
            "Objects written to each mirror by this instance (documents whose bytes changed)",
            m.mirror_written.clone(),
        );
        registry.register(
            "mirror_age_seconds",
            "Time since each mirror was last published whole and current (NaN: never)",
            m.mirror_age.clone(),
        );
        registry.register(
            "mirror_behind_changes",
            "Public changes committed that each mirror does not hold yet",
            m.mirror_behind.clone(),
        );
        // Every outcome is there from the start (at 0), so a rate over it never starts from
        // a missing series.
        for p in [Promise::Kept, Promise::Late, Promise::HoldingUpdate] {
            m.promises
                .get_or_create(&OutcomeLabels {
                    outcome: p.label().into(),
                })
                .inc_by(0);
        }
        Self { registry, ..m }
    }

    pub fn delivery(&self, channel: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A publish to `mirror` finished.
    pub fn mirror_published(&self, mirror: &str, report: &crate::mirror::Report) {
        self.mirror_written
            .get_or_create(&MirrorLabels {
                mirror: mirror.to_string(),
            })
            .inc_by(report.written as u64);
    }

    pub fn promise(&self, p: Promise) {
        self.promises
            .get_or_create(&OutcomeLabels {
                outcome: p.label().into(),
            })
            .inc();
    }

    pub fn apology(&self) {
        self.apologies.inc();
    }

    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status: format!("{}xx", status / 100),
            })
            .observe(seconds);
    }

    /// Reads the database facts, then renders everything in the OpenMetrics text format.
    pub async fn render(
        &self,
        conn: &mut Conn,
        channels: &[String],
        now: DateTime<Utc>,
    ) -> Result<String> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT channel, COUNT(*), MIN(created_at) FROM deliveries \
             WHERE state IN ('pending', 'in_flight') GROUP BY channel",
        )
        .fetch_all(&mut *conn)
        .await?;
        for ch in channels {
            // Each channel's outcomes exist from the first scrape on, at 0.
            for outcome in ["delivered", "retry", "dead"] {
                self.deliveries
                    .get_or_create(&DeliveryLabels {
                        channel: ch.clone(),
                        outcome: outcome.into(),
                    })
                    .inc_by(0);
            }
            let row = rows.iter().find(|(c, _, _)| c == ch);
            let labels = ChannelLabels {
                channel: ch.clone(),
            };
            self.outbox_depth
                .get_or_create(&labels)
                .set(row.map(|r| r.1).unwrap_or(0));
            let age = row
                .and_then(|r| r.2)
                .map(|t| (now - from_ms(t)).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            self.outbox_oldest.get_or_create(&labels).set(age);
        }

        let past = crate::store::history::resolved_since(conn, now - Duration::days(90)).await?;
        let mut ratios: Vec<f64> = past.iter().filter_map(|p| p.overrun_ratio()).collect();
        ratios.sort_by(f64::total_cmp);
        self.estimates.set(ratios.len() as i64);
        self.estimate_median.set(quantile(&ratios, 0.5));
        self.estimate_p90.set(quantile(&ratios, 0.9));

        let t = crate::store::inbox::totals(conn).await?;
        let share = |n: i64, of: i64| {
            if of == 0 {
                f64::NAN
            } else {
                n as f64 / of as f64
            }
        };
        self.inbox_conversations.set(t.conversations);
        self.inbox_answered.set(share(t.answered, t.conversations));
        self.inbox_closed.set(share(t.closed, t.closable));
        self.inbox_first_answer
            .set(share(t.answer_seconds, t.answered));

        let version = crate::store::changes::version(conn).await?;
        let mirrors: Vec<(String, Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT name, version, published_at FROM mirror_targets")
                .fetch_all(&mut *conn)
                .await?;
        for (name, v, at) in mirrors {
            let labels = MirrorLabels { mirror: name };
            self.mirror_written.get_or_create(&labels).inc_by(0);
            let age = at
                .map(|t| (now - from_ms(t)).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(f64::NAN);
            self.mirror_age.get_or_create(&labels).set(age);
            self.mirror_behind
                .get_or_create(&labels)
                .set(v.map_or(version, |v| (version - v).max(0)));
        }

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        Ok(out)
    }
}

/// The scrape formats `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`, what Prometheus asks for first.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, the classic Prometheus text format (promtool, older
    /// scrapers, a person with curl).
    PrometheusText,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names it with a quality above
    /// zero and at least that of `text/plain`, else the classic text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let (mut om, mut text) = (0.0_f64, 0.0_f64);
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|v| v.parse::<f64>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics document: a counter's `HELP`
/// and `TYPE` name its `_total` series, `unknown` becomes `untyped`, and the `# EOF` and `# UNIT`
/// lines (OpenMetrics only) go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_string());
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                let tail = if kind == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                };
                out.push_str(kind);
                out.push_str(&name);
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The nearest-rank quantile of sorted values (NaN for none: no data is not a ratio of 0).
/// A quantile of the sorted ratios, NaN when there are none (Prometheus' "no value").
fn quantile(sorted: &[f64], q: f64) -> f64 {
    crate::domain::estimates::quantile(sorted, q).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain")),
            Format::PrometheusText
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Format::PrometheusText
        );
    }

    #[test]
    fn the_text_format_names_counters_by_their_total_series() {
        let m = Metrics::new();
        m.promise(Promise::Kept);
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &m.registry).unwrap();
        assert!(om.contains("# HELP candor_promises "), "{om}");
        let text = to_prometheus_text(&om);
        assert!(
            text.contains("# HELP candor_promises_total Promised"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE candor_promises_total counter"),
            "{text}"
        );
        assert!(
            text.contains("candor_promises_total{outcome=\"kept\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("candor_promises_total{outcome=\"late\"} 0"),
            "every outcome is there from the start: {text}"
        );
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v = [0.5, 1.0, 1.5, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 1.5);
        assert_eq!(quantile(&v, 0.9), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
