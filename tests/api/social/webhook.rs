//! Standard Webhooks: signatures a receiver verifies and an id kept across retries.

use super::*;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn signed_webhooks_verify_as_a_receiver_checks_them_and_keep_their_id_across_retries() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/signed"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/signed"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&m)
        .await;
    let t = app(format!(
        "  signed: {{ type: webhook, url: \"{}/signed\", signing_secret: \"{WHSEC}\" }}\n",
        m.uri()
    ))
    .await;
    // A receiver refuses timestamps more than five minutes from its own clock: send at the
    // real time.
    t.clock.set(SystemClock.now());
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(60));
    assert_eq!(t.dispatch_all().await.delivered, 1);

    let reqs = requests_to(&m, "/signed").await;
    assert_eq!(reqs.len(), 2);
    let receiver = standardwebhooks::Webhook::new(WHSEC).unwrap();
    let d = &deliveries_of(&t, "signed").await[0];
    for r in &reqs {
        receiver
            .verify(&r.body, &r.headers)
            .expect("the receiver accepts the signature");
        assert_eq!(
            r.headers["webhook-id"],
            format!("candor-delivery-{}", d.id).as_str()
        );
        let mut tampered = r.body.clone();
        tampered.push(b' ');
        assert!(receiver.verify(&tampered, &r.headers).is_err());
    }
    let ts = |r: &Request| {
        r.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(
        ts(&reqs[1]) - ts(&reqs[0]),
        60,
        "each attempt signs its own time"
    );
    let other = standardwebhooks::Webhook::new("whsec_QWFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").unwrap();
    assert!(other.verify(&reqs[0].body, &reqs[0].headers).is_err());
    t.finish().await;
}
