//! Issue 15, defect 3, the operator's side: an online backup through the
//! running server, `store verify`, a restore, and a damaged store that
//! `serve` refuses with an error naming its directory.

use std::process::Command;

use super::*;

fn frontdesk(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .output()
        .expect("run frontdesk")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_verify_restore_and_refuse_damage() {
    if sled_only("restores into sled's data_dir and damages its files") {
        return;
    }
    let s = setup("", None);
    let data = s.config.parent().unwrap().join("data");
    let srv = Server::start(&s);
    let mut ids = Vec::new();
    for name in ["Ada", "Bo", "Cy"] {
        let v = srv.new_visitor(name).await;
        assert_eq!(srv.say(&v, "how much is shipping", "1").await.status, 200);
        assert_eq!(srv.say(&v, "thanks", "2").await.status, 200);
        ids.push(v.id);
    }
    let out = tempfile::tempdir().unwrap();
    let backup = out.path().join("b");
    let b = backup.to_str().unwrap();
    let url = format!("http://{}", srv.addr);

    // A wrong token: refused, and nothing is left behind.
    let o = frontdesk(&[
        "store",
        "backup",
        b,
        "--token",
        "fd_wrong_token_123456",
        "--url",
        &url,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("401"), "{}", text(&o));
    assert!(!backup.exists());

    // While the server serves.
    let o = frontdesk(&["store", "backup", b, "--token", &srv.admin, "--url", &url]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("backed up 3 conversations"),
        "{}",
        text(&o)
    );
    // Never over an earlier backup.
    let o = frontdesk(&["store", "backup", b, "--token", &srv.admin, "--url", &url]);
    assert!(
        !o.status.success() && text(&o).contains("not empty"),
        "{}",
        text(&o)
    );
    let o = frontdesk(&["store", "verify", "--data", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("whole: 3 conversations"), "{}", text(&o));
    let admin = srv.admin.clone();
    srv.stop();

    // Restore: a server on the copy has every conversation and the admin.
    let restored = setup(&format!("data_dir = {backup:?}\n"), None);
    let body = std::fs::read_to_string(&restored.config).unwrap();
    // `setup` wrote its own data_dir first; keep only the restored one.
    let body: Vec<&str> = body.lines().collect();
    let first = body.iter().position(|l| l.starts_with("data_dir")).unwrap();
    let body: Vec<&str> = body
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&restored.config, body.join("\n")).unwrap();
    let srv = Server::start_with(&restored, Some(admin.clone()));
    for id in &ids {
        let r = call(
            "GET",
            &srv.url(&format!("/api/v1/agent/conversations/{id}")),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let said: Vec<&str> = r.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"]["client_id"].as_str())
            .collect();
        assert_eq!(said, ["1", "2"], "{}", r.text);
    }
    srv.stop();

    // A damaged store: `db` deleted. Refused with its directory named; no
    // empty store, no new admin, no panic.
    std::fs::remove_file(data.join("db")).unwrap();
    let o = frontdesk(&["serve", "--config", s.config.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&data.display().to_string()) && t.contains("damaged"),
        "{t}"
    );
    assert!(!t.contains("panicked") && !t.contains("admin"), "{t}");
    assert!(!data.join("db").exists(), "an empty store was made");
    let o = frontdesk(&["store", "verify", "--data", data.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("DAMAGED"), "{}", text(&o));
}
