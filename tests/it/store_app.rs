//! The application on the in-memory store: what startup rebuilds from the
//! store's indexes, without a disk or a process (the crash suites cover
//! the real server on sled).

use std::sync::Arc;

use frontdesk::app::{Agent, App, NewAgent, NewConversation, SendMessage, SetPresence, Stored};
use frontdesk::config::Config;
use frontdesk::conversation::Event;
use frontdesk::handoff::Presence;
use frontdesk::store::{MemStore, Store};

fn config() -> Config {
    let intents = super::default_intents().display().to_string();
    Config::load(
        None,
        [("FRONTDESK_SERVER__INTENTS_DIR".to_string(), intents)],
    )
    .unwrap()
}

fn start(store: &Arc<MemStore>) -> App {
    App::with_store(config(), Arc::clone(store) as Arc<dyn Store>)
        .unwrap()
        .0
}

#[test]
fn a_restart_keeps_the_queue_and_who_holds_what() {
    let store = Arc::new(MemStore::new());
    let app = start(&store);
    let created = app
        .add_agent(NewAgent {
            name: "alex".into(),
            admin: None,
            token: None,
        })
        .unwrap();
    let alex = Agent {
        name: created.name,
        admin: false,
    };
    app.set_presence(
        &alex,
        SetPresence {
            presence: Presence::Online,
            capacity: Some(2),
        },
    )
    .unwrap();
    let ids: Vec<String> = (0..4)
        .map(|_| {
            app.create_conversation(NewConversation::default())
                .unwrap()
                .id
        })
        .collect();
    for id in &ids[..3] {
        app.ask_for_person(id).unwrap();
    }
    app.claim(&alex, &ids[0]).unwrap();
    app.claim(&alex, &ids[1]).unwrap();
    app.close(&alex, &ids[1]).unwrap();
    assert_eq!(store.held().unwrap(), [(ids[0].clone(), "alex".into())]);
    let queued: Vec<String> = store
        .waiting()
        .unwrap()
        .into_iter()
        .map(|w| w.conversation)
        .collect();
    assert_eq!(queued, [ids[2].clone()]);
    drop(app);

    let app = start(&store);
    assert_eq!(app.agent_info(&alex).active, [ids[0].clone()]);
    let waiting: Vec<String> = app
        .queue_view()
        .waiting
        .into_iter()
        .map(|w| w.conversation)
        .collect();
    assert_eq!(waiting, [ids[2].clone()]);
    // The held conversation can be closed after the restart: the holding
    // was restored, not just listed.
    app.set_presence(
        &alex,
        SetPresence {
            presence: Presence::Online,
            capacity: None,
        },
    )
    .unwrap();
    app.close(&alex, &ids[0]).unwrap();
    assert!(store.held().unwrap().is_empty());
}

/// A conversation deleted while the report refresh folds it leaves no
/// facts row behind (its visitor's data would stay in reports and the CSV
/// after a deletion request).
#[test]
fn a_delete_during_a_report_refresh_leaves_no_facts() {
    use frontdesk::conversation::{Event, Visitor};
    let dir = tempfile::tempdir().expect("temp dir");
    let sled: Arc<dyn Store> =
        Arc::new(frontdesk::store::SledStore::open(dir.path()).expect("store"));
    let spy = crate::spy::Spy::new(sled);
    let at = 1_780_000_000_000;
    for id in ["kept", "gone"] {
        spy.create(
            id,
            at,
            Visitor {
                email: Some(format!("{id}@example.com")),
                ..Visitor::default()
            },
        )
        .expect("create");
        spy.append(
            id,
            at + 1_000,
            vec![Event::VisitorMessage {
                text: "where is my order".into(),
                client_id: format!("{id}-1"),
            }],
        )
        .expect("append");
    }
    spy.delete_after_read("gone");
    frontdesk::report::refresh(spy.as_ref(), at + 60_000).expect("refresh");
    let rows: Vec<String> = spy
        .facts(i64::MIN, i64::MAX)
        .expect("facts")
        .into_iter()
        .map(|r| r.conversation)
        .collect();
    assert_eq!(rows, vec!["kept".to_string()]);
    assert!(spy
        .visitor_starts("gone@example.com", i64::MIN, i64::MAX)
        .expect("visitor index")
        .is_empty());
}

/// A set built from files that changed before it was swapped in (a second
/// save or a hand edit landed in between) is not served as if it were the
/// files: the watcher skips files identical to the served set, so a stale
/// set would have stayed until some later edit (second reader's finding).
#[test]
fn a_set_built_from_files_that_changed_since_is_not_served_as_current() {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(super::default_intents()).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let config = Config::load(
        None,
        [(
            "FRONTDESK_SERVER__INTENTS_DIR".to_string(),
            dir.path().display().to_string(),
        )],
    )
    .unwrap();
    let store = Arc::new(MemStore::new());
    let app = App::with_store(config, Arc::clone(&store) as Arc<dyn Store>)
        .unwrap()
        .0;
    // A save reads the directory and builds...
    let (stale, digest) =
        frontdesk::replay::edited_set(dir.path(), &Default::default(), app.model()).unwrap();
    // ...another edit lands...
    let file = dir.path().join("shipping_cost.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text + "\n# edited by hand\n").unwrap();
    // ...then the first save swaps its set in.
    app.install(stale, digest);
    assert!(
        app.serves_files_as_they_are(),
        "what is served must be what is on disk, else the watcher never heals it"
    );
}

/// Review of P4's fix: an admin's request checks its token before it
/// waits for the agents' lock; one that waited while another admin
/// disabled or demoted its sender must change nothing when it runs (it
/// re-enabled, re-promoted, made new admins, re-tokened colleagues).
#[test]
fn an_admin_disabled_or_demoted_while_a_request_waits_changes_nothing() {
    use frontdesk::app::AgentChange;
    let store = Arc::new(MemStore::new());
    let app = start(&store);
    let new = |name: &str| NewAgent {
        name: name.into(),
        admin: Some(true),
        token: None,
    };
    let root_token = app.add_agent(new("root")).unwrap().token;
    let bee = app.add_agent(new("bee")).unwrap();
    let root = app.agent_for(&root_token).unwrap();
    // bee's requests passed their token check here, then waited.
    let waiting = app.agent_for(&bee.token).unwrap();
    let change = |admin: Option<bool>, disabled: Option<bool>| AgentChange {
        display_name: None,
        admin,
        disabled,
    };
    for (undo, redo) in [
        (change(None, Some(true)), change(None, Some(false))),
        (change(Some(false), None), change(Some(true), None)),
    ] {
        app.change_agent(&root, "bee", undo).unwrap();
        let e = app.change_agent(&waiting, "bee", redo).unwrap_err();
        assert_eq!(e.code, "not_admin", "{}", e.message);
        let e = app.add_agent_as(Some(&waiting), new("evil")).unwrap_err();
        assert_eq!(e.code, "not_admin");
        assert_eq!(
            app.rotate_token(&waiting, "root").unwrap_err().code,
            "not_admin"
        );
        assert_eq!(
            app.remove_agent(&waiting, "root").unwrap_err().code,
            "not_admin"
        );
        let list = app.agents_list().unwrap();
        let bee_now = list.iter().find(|a| a.name == "bee").unwrap();
        assert!(bee_now.disabled || !bee_now.admin, "{bee_now:?}");
        assert!(list.iter().all(|a| a.name != "evil"));
        assert!(app.agent_for(&root_token).is_some(), "root keeps its token");
        // Back to an enabled admin for the next round (with a new token).
        app.change_agent(&root, "bee", change(Some(true), Some(false)))
            .unwrap();
    }
}

/// Deleting a conversation (the visitor's right to be forgotten) leaves
/// nothing of it behind: the record of its email links' used nonces and
/// the sessions they bought went with it (they stayed in the settings).
#[test]
fn deleting_a_conversation_forgets_its_email_links() {
    let store = Arc::new(MemStore::new());
    let intents = super::default_intents().display().to_string();
    let config = Config::load(
        None,
        [
            ("FRONTDESK_SERVER__INTENTS_DIR".to_string(), intents),
            ("FRONTDESK_EMAIL__HOST".to_string(), "127.0.0.1".to_string()),
            ("FRONTDESK_EMAIL__PORT".to_string(), "9".to_string()),
            (
                "FRONTDESK_EMAIL__FROM".to_string(),
                "shop@example.com".to_string(),
            ),
            (
                "FRONTDESK_EMAIL__PUBLIC_URL".to_string(),
                "https://shop.example/help".to_string(),
            ),
        ],
    )
    .unwrap();
    let app = App::with_store(config, Arc::clone(&store) as Arc<dyn Store>)
        .unwrap()
        .0;
    let id = app
        .create_conversation(NewConversation::default())
        .unwrap()
        .id;
    let link = app.resume_link(&id).expect("email is configured");
    let key = link.rsplit_once(&format!("{id}.")).unwrap().1;
    let session = app.resume(&id, key).unwrap();
    assert!(app.resumed_may(&id, &session));
    let setting = format!("email-resume:{id}");
    assert!(store.setting(&setting).unwrap().is_some());
    app.delete_conversation(&id).unwrap();
    assert_eq!(store.setting(&setting).unwrap(), None);
    assert!(!app.resumed_may(&id, &session));
}

/// The bug this pins (found by the cluster crash test, issue 20): a
/// retried message reached a node whose folded state of the conversation
/// was older than the log (the first attempt had been stored by another
/// node, whose answer was lost with it). The write met the newer log,
/// decided again, found the client id stored and wrote nothing, and the
/// retry was answered `200` with no records and `duplicate: false`
/// instead of the stored message. Two apps on one store stand for the
/// two nodes (the memory store has no feed of the other's writes, so the
/// second app's state stays old, as it does until a notification lands).
#[test]
fn a_retry_on_a_node_with_an_older_state_gets_the_stored_message() {
    let store = Arc::new(MemStore::new());
    let (one, two) = (start(&store), start(&store));
    let id = one
        .create_conversation(NewConversation::default())
        .unwrap()
        .id;
    let send = |app: &App, text: &str, cid: &str| {
        app.send(
            &id,
            SendMessage {
                text: text.into(),
                client_id: cid.into(),
            },
        )
        .unwrap()
    };
    // The second node folds the conversation as it is now.
    send(&two, "hello", "m1");
    // The first node stores the next message; its answer is lost.
    let first = send(&one, "what are your opening hours", "m2");
    assert!(!first.duplicate && !first.records.is_empty());
    // The retry goes to the second node.
    let retry = send(&two, "what are your opening hours", "m2");
    assert!(
        retry.duplicate,
        "the retry is not answered as one: {retry:?}"
    );
    let seqs = |s: &Stored| s.records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&retry), seqs(&first));
    // Stored once.
    let log = store.read(&id, 0).unwrap();
    let m2 = log
        .iter()
        .filter(
            |r| matches!(&r.event, Event::VisitorMessage { client_id, .. } if client_id == "m2"),
        )
        .count();
    assert_eq!(m2, 1);
}
