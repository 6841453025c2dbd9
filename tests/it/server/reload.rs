//! Hot reload: a valid edit is live within a second; an invalid one is
//! reported and the old intents keep answering.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

const SHIPPING: &str = "description = \"Shipping costs\"\nkeywords = [\"shipping cost\"]\nexamples = [\"how much is shipping\", \"what does delivery cost\", \"shipping price\"]\nanswer = \"Shipping is 5 euros.\"\n";
const HOURS: &str = "description = \"Opening hours\"\nkeywords = [\"opening hours\"]\nexamples = [\"when are you open\", \"what are your hours\", \"are you open on sunday\"]\nanswer = \"We are open 9 to 5.\"\n";

async fn answer(srv: &Server, v: &Visitor, text: &str, id: &str) -> String {
    let r = srv.say(v, text, id).await;
    r.body["records"][1]["event"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_live_within_a_second_and_bad_ones_are_refused() {
    let intents = tempfile::tempdir().unwrap();
    std::fs::write(intents.path().join("shipping_cost.toml"), SHIPPING).unwrap();
    std::fs::write(intents.path().join("opening_hours.toml"), HOURS).unwrap();
    let s = setup("", Some(intents.path()));
    let srv = Server::start(&s);
    let v = srv.new_visitor("A").await;
    assert_eq!(
        answer(&srv, &v, "how much is shipping", "1").await,
        "Shipping is 5 euros."
    );

    // A valid edit.
    let edited = SHIPPING.replace("5 euros", "free this week");
    let written = Instant::now();
    std::fs::write(intents.path().join("shipping_cost.toml"), edited).unwrap();
    let mut n = 0;
    loop {
        n += 1;
        let a = answer(&srv, &v, "how much is shipping", &format!("e{n}")).await;
        if a == "Shipping is free this week." {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "never reloaded: {a}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = written.elapsed();
    assert!(took < Duration::from_secs(1), "live after {took:?}");

    // An invalid edit: reported (admin API), and the old set keeps serving.
    std::fs::write(
        intents.path().join("opening_hours.toml"),
        HOURS.replace(
            "keywords = [\"opening hours\"]",
            "keywords = [\"opening hours\"\nanswers = 3",
        ),
    )
    .unwrap();
    let status = loop {
        let r = call(
            "GET",
            &srv.url("/api/v1/admin/intents"),
            Some(&srv.admin),
            None,
        )
        .await;
        if r.body["status"]["ok"] == false {
            break r.body;
        }
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "never reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let errors = status["status"]["errors"].as_array().unwrap();
    assert!(
        errors[0].as_str().unwrap().contains("opening_hours.toml:"),
        "{errors:?}"
    );
    assert_eq!(status["intents"].as_array().unwrap().len(), 2);
    assert_eq!(
        answer(&srv, &v, "when are you open", "h1").await,
        "We are open 9 to 5."
    );
    assert_eq!(
        answer(&srv, &v, "shipping price", "h2").await,
        "Shipping is free this week."
    );

    // The reload endpoint says the same; a fix brings it back.
    let r = call(
        "POST",
        &srv.url("/api/v1/admin/reload"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.body["ok"], false);
    std::fs::write(
        intents.path().join("opening_hours.toml"),
        HOURS.replace("9 to 5", "8 to 6"),
    )
    .unwrap();
    let r = call(
        "POST",
        &srv.url("/api/v1/admin/reload"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.body["ok"], true, "{}", r.text);
    assert_eq!(
        answer(&srv, &v, "when are you open", "h3").await,
        "We are open 8 to 6."
    );

    // The admin's "try a message" trace.
    let r = call(
        "POST",
        &srv.url("/api/v1/admin/classify"),
        Some(&srv.admin),
        Some(json!({"text": "what does delivery cost"})),
    )
    .await;
    assert_eq!(r.body["decision"], "answer", "{}", r.text);
    assert_eq!(r.body["intent"], "shipping_cost");
    assert!(r.body["trace"]
        .as_str()
        .unwrap()
        .contains("decision: answer"));
    assert!(!r.body["candidates"][0]["evidence"]
        .as_array()
        .unwrap()
        .is_empty());
}
