//! Issue 16: a shop with `[texts] language = "de"` talks German to its
//! visitors, end to end through the real server: the bot's own sentences,
//! the queue notice with its opening time, and the widget's lines.

use frontdesk::conversation::{Language, Texts};
use serde_json::{json, Value};

use super::*;

/// The visitor-facing text of a record, if the server wrote one.
fn bot_text(r: &Value) -> Option<&str> {
    let e = &r["event"];
    match e["type"].as_str()? {
        "bot_reply" | "fallback" | "handoff_offered" | "clarification" => e["text"].as_str(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_conversation_in_german() {
    let de = Texts::builtin(Language::De);
    let en = Texts::builtin(Language::En);
    // Open every day but closed today and the next two days (UTC): the
    // queue notice names a German weekday, whenever the test runs.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let closed: Vec<String> = (0..3)
        .map(|d| {
            today
                .checked_add(jiff::Span::new().days(d))
                .unwrap()
                .to_string()
        })
        .collect();
    let all_day = "[\"00:00-23:59\"]";
    let s = setup(
        &format!(
            "[texts]\nlanguage = \"de\"\nwidget_thanks = \"Vielen Dank für Ihre Sterne!\"\n\
             [business_hours]\ntimezone = \"UTC\"\nmonday = {all_day}\ntuesday = {all_day}\n\
             wednesday = {all_day}\nthursday = {all_day}\nfriday = {all_day}\n\
             saturday = {all_day}\nsunday = {all_day}\nclosed = {closed:?}\n\
             [email]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
             from = \"shop@example.com\"\npublic_url = \"https://shop.example/\"\n"
        ),
        None,
    );
    let srv = Server::start(&s);
    let v = srv.new_visitor("").await;
    let mut vws = ws(&srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}&after=1",
        v.id, v.token
    )))
    .await;

    // Not understood twice: the German fallback, then the German offer.
    let r = srv.say(&v, "zzkx qvvj", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"][1]["event"]["type"], "fallback",
        "{}",
        r.text
    );
    assert_eq!(bot_text(&r.body["records"][1]), Some(de.fallback.as_str()));
    let r = srv.say(&v, "qqxz wwpk", "m2").await;
    let offer = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["type"] == "handoff_offered")
        .unwrap_or_else(|| panic!("an offer: {}", r.text));
    assert_eq!(bot_text(offer), Some(de.offer.as_str()));

    // The widget's German "yes" quick reply is understood: handoff, and
    // the notice says, in German, that the shop opens on a weekday.
    let r = srv.say(&v, &de.offer_yes, "m3").await;
    let types: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"handoff"), "{types:?}");
    let (queued, _) = until_event(&mut vws, "queued").await;
    assert_eq!(queued["record"]["event"]["position"], 1);
    let (notice, _) = until_event(&mut vws, "bot_reply").await;
    let notice = &notice["record"];
    let text = bot_text(notice).unwrap();
    assert!(text.starts_with("Wir haben gerade geschlossen."), "{text}");
    assert!(text.contains(" um 00:00 Uhr (UTC)"), "{text}");
    let weekdays = [
        &de.monday,
        &de.tuesday,
        &de.wednesday,
        &de.thursday,
        &de.friday,
        &de.saturday,
        &de.sunday,
    ];
    assert!(weekdays.iter().any(|d| text.contains(d.as_str())), "{text}");
    // A mail server is configured (nothing listens on port 9): the notice
    // offers to leave an email, in German (without one it must not).
    assert!(text.ends_with(&de.queue_email_offer), "{text}");
    assert_eq!(notice["event"]["quick_replies"], json!([de.leave_email]));

    // An agent joins, writes, closes; the visitor rates.
    let alex = srv.new_agent("alex").await;
    let p = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&alex),
        Some(json!({"presence": "online", "capacity": 1})),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let path = |what: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    let c = call("POST", &path("claim"), Some(&alex), None).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let (joined, _) = until_event(&mut vws, "agent_joined").await;
    assert_eq!(joined["record"]["event"]["agent"], "alex");
    let m = call(
        "POST",
        &path("messages"),
        Some(&alex),
        Some(json!({"text": "Hallo, ich schaue nach."})),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    let c = call("POST", &path("close"), Some(&alex), None).await;
    assert_eq!(c.status, 200, "{}", c.text);
    until_event(&mut vws, "closed").await;
    let rate = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{}/rating", v.id)),
        Some(&v.token),
        Some(json!({"score": 5})),
    )
    .await;
    assert_eq!(rate.status, 200, "{}", rate.text);

    // Every sentence the server wrote to the visitor is a German one.
    let log = call(
        "GET",
        &srv.url(&format!("/api/v1/conversations/{}/events?after=0", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let texts: Vec<&str> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(bot_text)
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    for t in &texts {
        for key in frontdesk::conversation::texts::KEYS {
            let english = en.get(key.name).unwrap();
            assert!(english.len() < 12 || !t.contains(english), "{t:?}");
        }
    }

    // The widget the visitor's page loads speaks German too: agent joins,
    // close, rating, queue place, with the shop's own override.
    let js = call("GET", &srv.url("/widget.js"), None, None).await;
    assert_eq!(js.status, 200);
    let line = js
        .text
        .lines()
        .find(|l| l.contains("var SERVED = "))
        .expect("the served texts");
    let json_text = line
        .trim()
        .trim_start_matches("var SERVED = ")
        .trim_end_matches(';');
    let served: Value = serde_json::from_str(json_text).expect("JSON texts");
    assert_eq!(served["lang"], "de");
    let strings = &served["strings"];
    assert_eq!(strings["joined"], de.widget_joined.as_str());
    assert_eq!(strings["closed"], de.widget_closed.as_str());
    assert_eq!(strings["rate"], de.widget_rate.as_str());
    assert_eq!(strings["queued"], de.widget_queued.as_str());
    assert_eq!(strings["yes"], de.offer_yes.as_str());
    assert_eq!(strings["thanks"], "Vielen Dank für Ihre Sterne!");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_text_override_stops_the_start_with_its_line() {
    let s = setup(
        "[texts]\nlanguage = \"de\"\nfallback = \"Hallo {name}\"\n",
        None,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--config"])
        .arg(&s.config)
        .env("FRONTDESK_LOG", "warn")
        .output()
        .expect("run frontdesk");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // setup() writes five lines of [server] before the extra text.
    assert!(
        err.contains("frontdesk.toml:8:12: [texts] text `fallback` does not support the placeholder `{name}`"),
        "{err}"
    );
}
