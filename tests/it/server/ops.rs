//! What operators touch: health, metrics, the API description, the
//! default config, agents from the command line, a graceful stop.

use std::process::Command;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_openapi_and_a_graceful_stop() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let h = call("GET", &srv.url("/healthz"), None, None).await;
    assert_eq!((h.status, h.body["status"].as_str()), (200, Some("ok")));
    assert_eq!(h.body["intents"], 22);

    let doc = call("GET", &srv.url("/api/v1/openapi.json"), None, None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/conversations",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/conversations/{id}/ws",
        "/api/v1/agent/queue",
        "/api/v1/agent/conversations/{id}/claim",
        "/api/v1/admin/reload",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    // Every operation documents the error shape.
    for (p, item) in paths {
        for (_, op) in item.as_object().unwrap() {
            let r = &op["responses"];
            assert!(r["429"]["headers"]["Retry-After"].is_object(), "{p}");
            assert_eq!(
                r["404"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{p}"
            );
        }
    }

    let m = raw("GET", &srv.url("/metrics"), None, None, vec![], &[]).await;
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(m.text.contains("# TYPE frontdesk_queue_length gauge"));

    // SIGTERM: the server stops by itself, cleanly.
    let log = srv.stop();
    assert!(log.contains("stopped") || log.is_empty(), "{log}");
}

/// `frontdesk agent add ARGS --config` on `s`'s config.
fn agent_add(s: &Setup, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["agent", "add"])
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .output()
        .unwrap()
}

/// An agent named `admin` who is not one, made before the first start:
/// the admin the server makes is named otherwise, and the name it prints
/// is the one that logs in with the printed token (it printed `admin`).
#[tokio::test]
async fn the_first_admin_is_printed_by_the_name_it_has() {
    let s = setup("", None);
    let out = agent_add(&s, &["admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srv = Server::start(&s);
    let name = srv
        .told
        .split_once("name `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| panic!("no admin's name in: {}", srv.told));
    assert_ne!(name, "admin", "{}", srv.told);
    let r = call("GET", &srv.url("/api/v1/agent/me"), Some(&srv.admin), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], name.as_str());
    assert_eq!(r.body["admin"], true);
}

#[test]
fn default_config_and_agents_from_the_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("default-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[limits]") && text.contains("bind = \"127.0.0.1:8080\""));

    let s = setup("compact_on_start = true\n", None);
    let out = agent_add(&s, &["sam", "--token", "sams-token-123456"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sams-token-123456"));
    let out = agent_add(&s, &["bad name!"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent name"));

    // The server knows sam (through a compaction on start); the first
    // start still makes an admin.
    let srv = Server::start(&s);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = call(
            "GET",
            &srv.url("/api/v1/agent/me"),
            Some("sams-token-123456"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["name"], "sam");
        assert_eq!(r.body["admin"], false);
    });
}
