//! `/metrics`: what Prometheus scrapes, in a format a real parser accepts.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// Prometheus' own Accept header (it prefers OpenMetrics).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

pub(crate) async fn scrape(t: &TestApp) -> String {
    let r = t
        .http
        .get(t.url("/metrics"))
        .header("accept", PROMETHEUS_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics: {e:?}\n{text}"));
    text
}

pub(crate) fn sample<'a>(text: &'a str, starts: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(starts))
        .and_then(|l| l.rsplit(' ').next())
}

#[tokio::test]
async fn metrics_count_deliveries_promises_apologies_and_estimate_accuracy() {
    let t = spawn_app().await;
    let text = scrape(&t).await;
    assert_eq!(
        sample(&text, "candor_outbox_depth{channel=\"log\"}"),
        Some("0")
    );

    // An incident estimated at 20 minutes; a holding update at 12:30 would be due, but the ETA
    // passes first (apology at 12:20); an update in time; resolved at 12:40 (2x the estimate).
    let id = t
        .declare(
            json!({ "title": "Queue backlog", "impact": "major", "message": "Jobs are delayed.",
                         "components": { "api": "degraded_performance" }, "eta_in": "20m" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let text = scrape(&t).await;
    assert_eq!(
        sample(&text, "candor_outbox_depth{channel=\"log\"}"),
        Some("1")
    );
    t.advance(Duration::from_secs(30));
    let text = scrape(&t).await;
    assert_eq!(
        sample(&text, "candor_outbox_oldest_age_seconds{channel=\"log\"}"),
        Some("30.0")
    );
    t.dispatch_all().await;

    t.advance_to(20);
    assert_eq!(t.tick().await, 1); // the apology
    t.advance_to(25);
    t.post(
        &format!("/api/v1/incidents/{id}/updates"),
        &json!({ "message": "Draining now." }),
    )
    .await;
    t.advance_to(56); // the promise from 12:25 falls due at 12:55: nobody wrote
    assert_eq!(t.tick().await, 1);
    t.advance_to(60);
    t.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &json!({ "message": "All caught up." }),
    )
    .await;
    t.dispatch_all().await;

    let text = scrape(&t).await;
    assert_eq!(
        sample(
            &text,
            "candor_deliveries_total{channel=\"log\",outcome=\"delivered\"}"
        ),
        Some("5")
    );
    assert_eq!(sample(&text, "candor_apologies_total"), Some("1"));
    assert_eq!(
        sample(&text, "candor_promises_total{outcome=\"kept\"}"),
        Some("2")
    );
    assert_eq!(
        sample(&text, "candor_promises_total{outcome=\"holding_update\"}"),
        Some("1")
    );
    assert_eq!(
        sample(&text, "candor_outbox_depth{channel=\"log\"}"),
        Some("0")
    );
    assert_eq!(
        sample(&text, "candor_estimate_accuracy_incidents"),
        Some("1")
    );
    // Resolved after 60 minutes against a first estimate of 20: three times as long.
    assert_eq!(
        sample(&text, "candor_estimate_accuracy_median_ratio"),
        Some("3.0")
    );
    // HTTP latency by matched route, not by raw path.
    assert!(
        text.contains("route=\"/api/v1/incidents/{id}/updates\""),
        "{text}"
    );
    assert!(!text.contains(&format!("/api/v1/incidents/{id}/updates")));
    t.finish().await;
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let t = spawn_app_with(Options {
        extra: Some("server: { metrics_token: \"scrape-me\" }\n".into()),
        ..Default::default()
    })
    .await;
    let r = t.http.get(t.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = t
        .http
        .get(t.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = t
        .http
        .get(t.url("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.finish().await;
}

#[tokio::test]
async fn a_scraper_that_asks_for_text_gets_the_prometheus_text_format() {
    let t = spawn_app().await;
    for accept in [None, Some("text/plain;version=0.0.4")] {
        let mut req = t.http.get(t.url("/metrics"));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/plain; version=0.0.4; charset=utf-8",
            "accept: {accept:?}"
        );
        let text = r.text().await.unwrap();
        openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("not valid Prometheus text: {e:?}\n{text}"));
        // Every series has its HELP under the series' own name (promtool's "no help text").
        for name in [
            "candor_promises_total",
            "candor_deliveries_total",
            "candor_apologies_total",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
            assert!(
                text.contains(&format!("# TYPE {name} counter")),
                "{name}: {text}"
            );
        }
        assert!(!text.contains("# EOF"));
        // Promises are counted from 0 before the first one, and no estimate ratio is made up.
        assert_eq!(
            sample(&text, "candor_promises_total{outcome=\"kept\"}"),
            Some("0")
        );
        assert_eq!(
            sample(&text, "candor_estimate_accuracy_median_ratio"),
            Some("NaN")
        );
    }
    t.finish().await;
}
