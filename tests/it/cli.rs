//! The real `frontdesk` binary: exit codes and what a user reads.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{default_intents, intent, intent_dir};

fn frontdesk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
}

/// Runs `chat` on the default intents with `input` on stdin; its stdout.
fn chat(extra: &[&str], input: &[u8]) -> String {
    let mut child = frontdesk()
        .args(["chat", "--intents", default_intents().to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = frontdesk().args(args).output().expect("run frontdesk");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_lists_every_error_and_exits_1() {
    let dir = intent_dir(&[
        ("a.toml", &intent("patterns = ['(']\n")),
        ("b.toml", &intent("oops = 1\n")),
    ]);
    let (ok, _, err) = run(&["check", "--intents", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("a.toml:4:13: bad regex in `patterns[0]`"),
        "{err}"
    );
    assert!(err.contains("b.toml:4:1: unknown field `oops`"), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn check_and_test_pass_on_the_default_intents() {
    let d = default_intents().to_str().unwrap();
    let (ok, out, err) = run(&["check", "--intents", d]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    let (ok, out, err) = run(&["test", "--intents", d]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn test_shows_the_trace_of_a_failure() {
    let ship = intent("tests = [\"where is my parcel\"]\n");
    let order = "description = \"d\"\nanswer = \"a\"\nexamples = [\"where is my parcel\", \"track my parcel\"]\n";
    let dir = intent_dir(&[("ship.toml", &ship), ("order.toml", order)]);
    let (ok, out, _) = run(&["test", "--intents", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("FAIL "), "{out}");
    assert!(out.contains("decision: "), "{out}");
    assert!(out.contains("nearest \"where is my parcel\""), "{out}");
    assert!(out.contains("0 passed, 1 failed"), "{out}");
}

#[test]
fn chat_replies_with_a_trace() {
    let text = chat(
        &["--name", "Ada"],
        b"hello\nhow much is shipping?\ndo you ship to mars\n",
    );
    assert!(text.contains("Ada"), "{text}");
    assert!(text.contains("decision: answer shipping_cost"), "{text}");
    assert!(text.contains("decision: fallback"), "{text}");
    assert!(text.contains("1. shipping_cost"), "{text}");
}

#[test]
fn import_eval_and_calibrate_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let csv = data.path().join("data.csv");
    let mut rows = String::from("text,intent\n");
    let topics = [
        (
            "ship",
            [
                "how much is shipping",
                "shipping price",
                "cost of delivery",
                "postage fee",
                "what does shipping cost",
                "delivery charge please",
            ],
        ),
        (
            "track",
            [
                "where is my order",
                "track my parcel",
                "has my package shipped",
                "order status",
                "where's my stuff",
                "when will my order come",
            ],
        ),
        (
            "hours",
            [
                "when are you open",
                "opening hours",
                "what time do you close",
                "are you open on sunday",
                "store hours please",
                "when do you open tomorrow",
            ],
        ),
    ];
    for (label, texts) in topics {
        for t in texts {
            rows.push_str(&format!("{t},{label}\n"));
        }
    }
    for t in [
        "what is the capital of france",
        "tell me a joke",
        "\"weather, tomorrow\"",
        "who won the game",
    ] {
        rows.push_str(&format!("{t},oos\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    let out = data.path().join("intents");
    let (ok, stdout, err) = run(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("imported 3 intents (18 examples) and 4 out-of-scope"),
        "{stdout}"
    );
    let oos = std::fs::read_to_string(out.join("_out_of_scope.toml")).unwrap();
    assert!(oos.contains("\"weather, tomorrow\""), "{oos}");

    let (ok, stdout, err) = run(&[
        "calibrate",
        csv.to_str().unwrap(),
        "--intents",
        out.to_str().unwrap(),
        "--folds",
        "3",
    ]);
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("cross-validated on 22 rows"), "{stdout}");
    let cal = std::fs::read_to_string(out.join("_calibration.toml")).unwrap();
    assert!(cal.contains("clarify = "), "{cal}");

    let preds = data.path().join("preds.csv");
    let (ok, stdout, err) = run(&[
        "eval",
        csv.to_str().unwrap(),
        "--intents",
        out.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--json",
        "--sweep",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("\"oos_recall\":"), "{stdout}");
    // With --json the sweep is part of the one JSON object.
    assert!(
        stdout.contains(",\"sweep\":[{\"threshold\":0.05,"),
        "{stdout}"
    );
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    assert!(stdout.trim().starts_with('{') && stdout.trim().ends_with('}'));
    let p = std::fs::read_to_string(&preds).unwrap();
    assert!(
        p.starts_with("text,gold,predicted,decision,confidence,latency_us\n"),
        "{p}"
    );
    assert_eq!(p.lines().count(), 23);
    // The loader now uses the calibrated thresholds.
    let (ok, stdout, _) = run(&["check", "--intents", out.to_str().unwrap()]);
    assert!(ok);
    assert!(stdout.contains("_calibration.toml"), "{stdout}");
}

#[test]
fn bad_csv_is_a_located_error() {
    let data = tempfile::tempdir().unwrap();
    let csv = data.path().join("bad.csv");
    std::fs::write(
        &csv,
        "text,intent\nhello,greeting\n\"unterminated,x\nmore,y,z\n",
    )
    .unwrap();
    let (ok, _, err) = run(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        data.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("bad.csv:"), "{err}");
    std::fs::write(&csv, "words,label2\nhello,greeting\n").unwrap();
    let (ok, _, err) = run(&["eval", csv.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.csv:1: the header must name a `text` and an `intent` column"),
        "{err}"
    );
}

/// Regression (newcomer review): chat forgot the bot's question between
/// lines, so an order number sent after the prompt fell back.
#[test]
fn chat_remembers_the_conversation() {
    let text = chat(&[], b"where is my order\n12345678\nbye\n");
    assert!(text.contains("What is your order number?"), "{text}");
    assert!(text.contains("Order 12345678"), "{text}");
    assert!(text.contains("(closed by bot)"), "{text}");
}

/// A `--since` ending in a character of several bytes is an error, not a
/// panic (the unit was cut off by byte).
#[test]
fn replay_since_with_a_wide_last_character_is_an_error() {
    let data = tempfile::tempdir().expect("temp dir");
    for since in ["7é", "é", "7日"] {
        let (ok, _out, err) = run(&[
            "replay",
            "--since",
            since,
            "--intents",
            "intents",
            "--data",
            data.path().to_str().expect("utf-8"),
        ]);
        assert!(!ok, "{since}");
        assert!(!err.contains("panicked"), "{since}: {err}");
        assert!(err.contains("--since"), "{since}: {err}");
    }
}

/// The sled-only commands refuse a PostgreSQL `[store]` with what to do
/// instead, naming the database without its password, before connecting
/// to anything; `store migrate` refuses a sled one.
#[test]
fn sled_only_commands_point_a_postgres_store_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(
        &config,
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://fd:pw-in-url@127.0.0.1:1/shop\"\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let backup = dir.path().join("copy");
    for (args, says) in [
        (
            vec!["store", "verify", "--config", c],
            "`store verify` works on a sled directory",
        ),
        (
            vec!["compact", "--config", c],
            "`compact` works on a sled directory",
        ),
        (
            vec!["store", "backup", backup.to_str().unwrap(), "--config", c],
            "an offline `store backup` reads a sled directory",
        ),
    ] {
        let (ok, out, err) = run(&args);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains("pg_dump") && err.contains("store copy"),
            "{err}"
        );
        assert!(err.contains("postgres://fd:***@127.0.0.1:1/shop"), "{err}");
        assert!(!err.contains("pw-in-url"), "{err}");
    }
    assert!(!backup.exists(), "nothing made");
    let sled = dir.path().join("sled.toml");
    std::fs::write(&sled, "").unwrap();
    let (ok, _, err) = run(&["store", "migrate", "--config", sled.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("[store] backend is sled"), "{err}");
    let (ok, _, err) = run(&["store", "copy", "--from", "mysql:x", "--to", "sled:y"]);
    assert!(!ok);
    assert!(err.contains("write sled:DIR or postgres:URL"), "{err}");
}

/// `calibrate` on fewer rows than its default 20 folds holds out each row
/// on its own rather than refusing a `--folds` the user never gave; a
/// number the user gives is still checked, and too few rows say so.
#[test]
fn calibrate_on_few_rows_needs_no_folds_flag() {
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("intents");
    super::store_damage::copy_dir(default_intents(), &out);
    let few = data.path().join("few.csv");
    let rows = "text,intent\n\
        how much is shipping,shipping_cost\n\
        what does delivery cost,shipping_cost\n\
        can i send it back,return_policy\n\
        how do i return a jacket,return_policy\n\
        where is my parcel,order_status\n\
        track my order please,order_status\n\
        when do you open,opening_hours\n\
        are you open on sunday,opening_hours\n\
        who will win the election,oos\n\
        recommend a podcast,oos\n\
        do you ship to mars,oos\n\
        what is the capital of peru,oos\n";
    std::fs::write(&few, rows).unwrap();
    let calibrate = |extra: &[&str], csv: &std::path::Path| {
        let mut args = vec![
            "calibrate",
            csv.to_str().unwrap(),
            "--intents",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (ok, stdout, err) = calibrate(&[], &few);
    assert!(ok, "{stdout}{err}");
    assert!(stdout.contains("cross-validated on 12 rows"), "{stdout}");
    let cal = std::fs::read_to_string(out.join("_calibration.toml")).unwrap();
    assert!(cal.contains("12-fold cross-validation"), "{cal}");

    let (ok, _, err) = calibrate(&["--folds", "13"], &few);
    assert!(!ok);
    assert!(
        err.contains("--folds must be from 2 to 12 for 12 rows, not 13"),
        "{err}"
    );

    let one = data.path().join("one.csv");
    std::fs::write(&one, "text,intent\nhow much is shipping,shipping_cost\n").unwrap();
    let (ok, _, err) = calibrate(&[], &one);
    assert!(!ok);
    assert!(
        err.contains("at least 2 rows") && !err.contains("--folds"),
        "{err}"
    );
}
