//! Canned replies through the real server: loaded from `canned.toml`
//! beside the intents with `{name}` filled in per conversation; a bad file
//! named at its `path:line:col` while the last good set serves; edits on
//! disk picked up without a restart; the admin API's read and validated
//! write, admins only.

use serde_json::json;

use super::*;

/// A temp directory with a copy of the intents and `canned` as the file
/// beside them; the server's setup points at that copy.
struct Dir {
    _tmp: tempfile::TempDir,
    canned: std::path::PathBuf,
    setup: Setup,
}

fn dir(canned: &str) -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let intents = tmp.path().join("intents");
    std::fs::create_dir(&intents).unwrap();
    for e in std::fs::read_dir(super::super::default_intents()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), intents.join(e.file_name())).unwrap();
    }
    let path = tmp.path().join("canned.toml");
    std::fs::write(&path, canned).unwrap();
    let setup = setup("", Some(&intents));
    Dir {
        _tmp: tmp,
        canned: path,
        setup,
    }
}

const GOOD: &str = "[[reply]]\ntitle = \"Ask for a photo\"\nshortcut = \"photo\"\ntext = \"Sorry, {name}! Could you send a photo of the damage?\"\n\n[[reply]]\ntitle = \"Anything else?\"\ntext = \"Anything else, {name}?\"\n";

async fn replies(s: &Server, token: &str, id: &str) -> Res {
    call(
        "GET",
        &s.url(&format!("/api/v1/agent/conversations/{id}/canned")),
        Some(token),
        None,
    )
    .await
}

fn texts(r: &Res) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canned_replies_load_fill_in_the_name_and_reload_from_disk() {
    let d = dir(GOOD);
    let s = Server::start(&d.setup);
    let agent = s.new_agent("sam").await;
    let dana = s.new_visitor("Dana").await;
    let r = replies(&s, &agent, &dana.id).await;
    assert_eq!(
        texts(&r),
        [
            "Sorry, Dana! Could you send a photo of the damage?",
            "Anything else, Dana?"
        ]
    );
    assert_eq!(r.body["replies"][0]["title"], "Ask for a photo");
    assert_eq!(r.body["replies"][0]["shortcut"], "photo");
    // A visitor without a name: the neutral word the intents use.
    let anon = call(
        "POST",
        &s.url("/api/v1/conversations"),
        None,
        Some(json!({})),
    )
    .await;
    let anon_id = anon.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        texts(&replies(&s, &agent, &anon_id).await)[1],
        "Anything else, there?"
    );
    // Only agents; an unknown conversation is a 404.
    let r = replies(&s, &dana.token, &dana.id).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(replies(&s, &agent, "c-none").await.status, 404);

    // A mistake on disk: the admin sees where, agents keep the last good set.
    std::fs::write(
        &d.canned,
        "[[reply]]\ntitle = \"Broken\"\ntext = \"Hello {nmae}, one moment please\"\n",
    )
    .unwrap();
    let v = call("GET", &s.url("/api/v1/admin/canned"), Some(&s.admin), None).await;
    assert_eq!(v.status, 200, "{}", v.text);
    let errors = v.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", v.text);
    let expected = format!(
        "{}:3:8: placeholder `{{nmae}}` is not known",
        d.canned.display()
    );
    assert!(
        errors[0].as_str().unwrap().starts_with(&expected),
        "{}",
        errors[0]
    );
    assert_eq!(
        texts(&replies(&s, &agent, &dana.id).await).len(),
        2,
        "the last good set serves"
    );
    // Fixed on disk: picked up without a restart.
    std::fs::write(
        &d.canned,
        "[[reply]]\ntitle = \"Welcome\"\ntext = \"Hello {name}, I am here to help.\"\n",
    )
    .unwrap();
    assert_eq!(
        texts(&replies(&s, &agent, &dana.id).await),
        ["Hello Dana, I am here to help."]
    );
    let v = call("GET", &s.url("/api/v1/admin/canned"), Some(&s.admin), None).await;
    assert_eq!(v.body["errors"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_read_and_replace_the_file_validated_first() {
    let d = dir(GOOD);
    let s = Server::start(&d.setup);
    let agent = s.new_agent("sam").await;
    let v = call("GET", &s.url("/api/v1/admin/canned"), Some(&s.admin), None).await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["toml"], GOOD);
    assert_eq!(v.body["file"], d.canned.display().to_string());
    assert_eq!(v.body["replies"].as_array().unwrap().len(), 2);
    // Agents may not read or write the file.
    let r = call("GET", &s.url("/api/v1/admin/canned"), Some(&agent), None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(
        "PUT",
        &s.url("/api/v1/admin/canned"),
        Some(&agent),
        Some(json!({"toml": GOOD})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // A file with problems: every one named, nothing written.
    let bad = "[[reply]]\ntitle = \"\"\ntext = \"x\"\n\n[[reply]]\ntitle = \"B\"\ntext = \"Hi {first}\"\n";
    let r = call(
        "PUT",
        &s.url("/api/v1/admin/canned"),
        Some(&s.admin),
        Some(json!({"toml": bad})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_canned");
    let msg = r.body["error"]["message"].as_str().unwrap();
    let path = d.canned.display().to_string();
    assert!(
        msg.contains(&format!("{path}:2:9: `title` must not be empty")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{path}:7:8: placeholder `{{first}}`")),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&d.canned).unwrap(), GOOD);
    let r = call(
        "PUT",
        &s.url("/api/v1/admin/canned"),
        Some(&s.admin),
        Some(json!({"toml": "not = [toml"})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{path}:1:")));

    // A good one replaces the file and serves at once.
    let new = "[[reply]]\ntitle = \"Label\"\nshortcut = \"label\"\ntext = \"Here is your return label, {name}.\"\n";
    let r = call(
        "PUT",
        &s.url("/api/v1/admin/canned"),
        Some(&s.admin),
        Some(json!({"toml": new})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["replies"][0]["title"], "Label");
    assert_eq!(std::fs::read_to_string(&d.canned).unwrap(), new);
    let v = s.new_visitor("Ola").await;
    assert_eq!(
        texts(&replies(&s, &agent, &v.id).await),
        ["Here is your return label, Ola."]
    );
}
