//! The reports over real HTTP with a real sled store and a clock the test
//! sets: traffic through the visitor and agent APIs, then the summary,
//! the drill-down and the CSV read back; bad windows, filters and tokens
//! refused with their codes.

use frontdesk::util::clock::Clock;

use super::*;

/// 2026-06-03 10:00 UTC (a Wednesday).
const T0: i64 = 1_780_480_800_000;

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Res {
    call("GET", &app.url(path), token, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_real_traffic_and_refuse_bad_input() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("", |s| s, clock.clone()).await;
    let alex = app.online_agent("alex").await;

    // Answered by the bot: contained.
    let a = app.new_visitor("Ada").await;
    let r = app.say(&a, "How much is shipping to Canada?", "a1").await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Asks for a person; alex claims 20 s later, writes 30 s after that,
    // closes; the visitor rates with a comment a spreadsheet would run.
    clock.advance(60_000);
    let b = call(
        "POST",
        &app.url("/api/v1/conversations"),
        None,
        Some(json!({"name": "Smith, \"Jo\"", "email": "jo@example.com"})),
    )
    .await;
    let b = Visitor {
        id: b.body["id"].as_str().unwrap().to_string(),
        token: b.body["token"].as_str().unwrap().to_string(),
    };
    app.say(&b, "=HYPERLINK(\"x\"), my order\nis late", "b1")
        .await;
    let h = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", b.id)),
        Some(&b.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let agent = |what: &str| app.url(&format!("/api/v1/agent/conversations/{}/{what}", b.id));
    clock.advance(20_000);
    let c = call("POST", &agent("claim"), Some(&alex), None).await;
    assert_eq!(c.status, 200, "{}", c.text);
    clock.advance(30_000);
    let m = call(
        "POST",
        &agent("messages"),
        Some(&alex),
        Some(json!({"text": "On its way."})),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    clock.advance(60_000);
    assert_eq!(
        call("POST", &agent("close"), Some(&alex), None)
            .await
            .status,
        200
    );
    let rate = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/rating", b.id)),
        Some(&b.token),
        Some(json!({"score": 5, "comment": "fast, \"really\""})),
    )
    .await;
    assert_eq!(rate.status, 200, "{}", rate.text);

    // Started and left without a word: not in the cohort.
    app.new_visitor("Silent").await;

    let s = get(&app, "/api/v1/admin/reports/summary", Some(&app.admin)).await;
    assert_eq!(s.status, 200, "{}", s.text);
    let r = &s.body;
    assert_eq!(r["window"]["from"], "2026-05-28");
    assert_eq!(r["window"]["to"], "2026-06-03");
    assert_eq!(r["window"]["timezone"], "UTC");
    assert_eq!(r["cohort"]["started"], 3);
    assert_eq!(r["cohort"]["conversations"], 2);
    let o = &r["outcomes"];
    assert_eq!(o["contained"]["num"], 1, "{o}");
    assert_eq!(o["handed_off"]["num"], 1, "{o}");
    assert_eq!(o["abandoned"]["num"], 0, "{o}");
    assert_eq!(o["contained"]["den"], 2);
    assert_eq!(o["contained"]["value"], 0.5);
    assert_eq!(r["handoff_reasons"][0]["reason"], "asked");
    assert_eq!(r["handoff_reasons"][0]["rate"]["num"], 1);
    let wait = &r["human"]["wait"]["clock"];
    assert_eq!(
        (wait["count"].as_u64(), wait["median_ms"].as_i64()),
        (Some(1), Some(20_000))
    );
    assert_eq!(r["human"]["first_response"]["clock"]["median_ms"], 50_000);
    assert_eq!(
        r["human"]["resolution"]["human"]["clock"]["median_ms"],
        110_000
    );
    // Closed a moment ago: FCR cannot be judged before fcr_days pass.
    assert_eq!(r["fcr"]["rate"]["den"], 0);
    assert_eq!(r["fcr"]["pending"], 1);
    assert_eq!(r["csat"]["with_person"]["positive"]["num"], 1);
    assert_eq!(r["csat"]["comments"][0]["comment"], "fast, \"really\"");
    assert_eq!(r["intents"][0]["intent"], "shipping_cost");
    assert_eq!(r["days"].as_array().unwrap().len(), 7);
    assert_eq!(r["days"][6]["conversations"], 2);

    // The same numbers for an explicit window; an empty one elsewhere.
    let explicit = get(
        &app,
        "/api/v1/admin/reports/summary?from=2026-06-03&to=2026-06-03",
        Some(&app.admin),
    )
    .await;
    assert_eq!(explicit.body["outcomes"], r["outcomes"]);
    let empty = get(
        &app,
        "/api/v1/admin/reports/summary?from=2026-05-01&to=2026-05-02",
        Some(&app.admin),
    )
    .await;
    assert_eq!(empty.body["cohort"]["conversations"], 0);
    assert_eq!(empty.body["outcomes"]["contained"]["value"], Value::Null);

    // Drill-down: the conversation behind each number.
    let d = get(
        &app,
        "/api/v1/admin/reports/conversations?filter=handoff:asked",
        Some(&app.admin),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["total"], 1);
    let row = &d.body["conversations"][0];
    assert_eq!(row["id"], b.id.as_str());
    assert_eq!(row["visitor"], "Smith, \"Jo\"");
    assert_eq!(row["wait_ms"], 20_000);
    let contained = get(
        &app,
        "/api/v1/admin/reports/conversations?filter=contained&limit=1",
        Some(&app.admin),
    )
    .await;
    assert_eq!(contained.body["conversations"][0]["id"], a.id.as_str());
    let paged = get(
        &app,
        "/api/v1/admin/reports/conversations?offset=1&limit=1",
        Some(&app.admin),
    )
    .await;
    assert_eq!(
        (
            paged.body["total"].as_u64(),
            paged.body["conversations"][0]["id"].as_str()
        ),
        (Some(2), Some(b.id.as_str()))
    );

    // The CSV, quoted by a CSV writer and read back by a CSV reader.
    let csv = get(
        &app,
        "/api/v1/admin/reports/conversations.csv",
        Some(&app.admin),
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("conversations-2026-05-28-2026-06-03.csv"));
    // Every field is quoted: a spreadsheet whose separator is `;` (a
    // German locale) must not split `hi;=cmd()` into a cell that starts
    // with `=`.
    assert!(csv.text.starts_with("\"id\",\""), "{}", csv.text);
    assert!(
        csv.text.contains(",\"handed_off\",\"asked\","),
        "{}",
        csv.text
    );
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "id");
    assert_eq!(header[4], "outcome");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[1][0], b.id.as_str());
    assert_eq!(&rows[1][1], "2026-06-03T10:01:00+00:00");
    assert_eq!(&rows[1][2], "Smith, \"Jo\"");
    // A formula is defused; the line break survives inside its quotes.
    assert_eq!(&rows[1][3], "'=HYPERLINK(\"x\"), my order\nis late");
    assert_eq!(
        (&rows[1][4], &rows[1][5], &rows[1][6], &rows[1][7]),
        ("handed_off", "asked", "20000", "50000")
    );
    assert_eq!(&rows[1][9], "5");
    assert_eq!(&rows[0][10], "shipping_cost");

    // Bad input: stable codes, JSON bodies.
    for (path, code) in [
        (
            "/api/v1/admin/reports/summary?from=2026-02-30",
            "bad_report_window",
        ),
        (
            "/api/v1/admin/reports/summary?from=yesterday",
            "bad_report_window",
        ),
        (
            "/api/v1/admin/reports/summary?from=2026-06-03&to=2026-06-01",
            "bad_report_window",
        ),
        (
            "/api/v1/admin/reports/summary?from=2020-01-01&to=2026-01-01",
            "bad_report_window",
        ),
        (
            "/api/v1/admin/reports/conversations?filter=everything",
            "bad_report_filter",
        ),
        (
            "/api/v1/admin/reports/conversations?filter=handoff:bored",
            "bad_report_filter",
        ),
        (
            "/api/v1/admin/reports/conversations?limit=0",
            "bad_report_page",
        ),
        (
            "/api/v1/admin/reports/conversations?limit=501",
            "bad_report_page",
        ),
        (
            "/api/v1/admin/reports/conversations.csv?to=2026-06-31",
            "bad_report_window",
        ),
    ] {
        let r = get(&app, path, Some(&app.admin)).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}: {}",
            r.text
        );
    }
    // No token, or an agent's: refused.
    for path in [
        "/api/v1/admin/reports/summary",
        "/api/v1/admin/reports/conversations",
        "/api/v1/admin/reports/conversations.csv",
    ] {
        assert_eq!(get(&app, path, None).await.status, 401, "{path}");
        assert_eq!(get(&app, path, Some(&alex)).await.status, 403, "{path}");
    }
}

fn frontdesk(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .env_remove("FRONTDESK_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reports_through_a_running_server() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("", |s| s, clock).await;
    let a = app.new_visitor("Ada").await;
    app.say(&a, "How much is shipping to Canada?", "a1").await;
    let url = app.url("");
    let admin = app.admin.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        frontdesk(&[
            "report",
            "--from",
            "2026-06-03",
            "--to",
            "2026-06-03",
            "--json",
            "--token",
            &admin,
            "--url",
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["outcomes"]["contained"]["num"], 1, "{out}");
    let url = app.url("");
    let admin = app.admin.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        frontdesk(&[
            "report",
            "--from",
            "2026-06-03",
            "--to",
            "2026-06-03",
            "--token",
            &admin,
            "--url",
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("contained (bot only)    100.0% (1/1)"),
        "{out}"
    );
    assert!(out.contains("shipping_cost"), "{out}");
    // A bad token is named, and a bad --since.
    let url = app.url("");
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        frontdesk(&["report", "--token", "nope-nope-nope-nope", "--url", &url])
    })
    .await
    .unwrap();
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, _, err) = frontdesk(&["report", "--since", "week"]);
    assert!(!ok && err.contains("--since \"week\""), "{err}");
}

#[test]
fn the_cli_reports_from_a_stopped_store() {
    use frontdesk::conversation::{Event, Visitor as Who};
    use frontdesk::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = frontdesk::store::SledStore::open(&data).unwrap();
        store.create("c1", T0, Who::default()).unwrap();
        store
            .append(
                "c1",
                T0 + 1_000,
                vec![Event::VisitorMessage {
                    text: "hello?".into(),
                    client_id: "1".into(),
                }],
            )
            .unwrap();
    }
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let (ok, out, err) = frontdesk(&[
        "report",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-07",
        "--json",
    ]);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["outcomes"]["abandoned"]["num"], 1, "{out}");
    assert_eq!(r["cohort"]["conversations"], 1);
}

/// The server keeps report facts parsed in memory (`report::cache`): a
/// conversation deleted by an admin (the same path as a visitor's erasure
/// and retention) leaves the summary, the drill-down and the CSV at once,
/// and new traffic afterwards (which refreshes the cache) does not bring
/// it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_conversation_never_comes_back_in_a_report_or_the_csv() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("", |s| s, clock.clone()).await;
    let ada = app.new_visitor("Ada Gone").await;
    let r = app.say(&ada, "How much is shipping to Canada?", "a1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    clock.advance(60_000);
    let bob = app.new_visitor("Bob Stays").await;
    let r = app.say(&bob, "Where is my order?", "b1").await;
    assert_eq!(r.status, 200, "{}", r.text);

    let shows = |what: &str, text: &str, id: &str| {
        assert!(
            !text.contains(id),
            "{what} shows a deleted conversation: {text}"
        );
        assert!(
            !text.contains("Ada Gone"),
            "{what} shows a deleted visitor: {text}"
        );
    };
    let summary = "/api/v1/admin/reports/summary";
    let csv = "/api/v1/admin/reports/conversations.csv";
    let drill = "/api/v1/admin/reports/conversations?filter=cohort";
    // Loaded into the cache with both.
    let s = get(&app, summary, Some(&app.admin)).await;
    assert_eq!(s.body["cohort"]["conversations"], 2, "{}", s.text);
    let c = get(&app, csv, Some(&app.admin)).await;
    assert!(c.text.contains(&ada.id), "{}", c.text);

    let d = call(
        "DELETE",
        &app.url(&format!("/api/v1/admin/conversations/{}", ada.id)),
        Some(&app.admin),
        None,
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.text);
    for round in 0..2 {
        let s = get(&app, summary, Some(&app.admin)).await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(
            s.body["cohort"]["conversations"], 1,
            "round {round}: {}",
            s.text
        );
        assert_eq!(s.body["cohort"]["started"], 1, "round {round}: {}", s.text);
        let c = get(&app, csv, Some(&app.admin)).await;
        assert_eq!(c.status, 200, "{}", c.text);
        shows("the CSV", &c.text, &ada.id);
        assert!(c.text.contains(&bob.id), "{}", c.text);
        let p = get(&app, drill, Some(&app.admin)).await;
        assert_eq!(p.body["total"], 1, "{}", p.text);
        shows("the drill-down", &p.text, &ada.id);
        // New traffic: the next report refreshes (folds `bob` again).
        clock.advance(60_000);
        let r = app
            .say(&bob, "And the shipping cost?", &format!("b{}", round + 2))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}
