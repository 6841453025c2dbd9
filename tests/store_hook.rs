//! The panic hook while a store opens (issue 15's review): alone in its
//! own test binary, since it installs a process-wide hook of its own.

use frontdesk::store::{SledStore, Store};

/// `integrity::quietly` replaces the process-wide panic hook for as long as
/// sled runs under it, which at open is the whole walk (seconds on a large
/// store). A panic on any other thread in that time - a request handler, a
/// test running beside it, the webhook sender - is swallowed: no message,
/// no hook of the application's own (error reporting) sees it.
#[test]
fn other_threads_panics_are_not_silenced_while_a_store_opens() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    {
        let s = SledStore::open(&dir).unwrap();
        for c in 0..100 {
            let id = format!("c{c}");
            s.create(&id, 1, Default::default()).unwrap();
            let events = (0..300)
                .map(|i| frontdesk::conversation::Event::InternalNote {
                    agent: "a".into(),
                    text: format!("note {i}"),
                })
                .collect();
            s.append(&id, 2, events).unwrap();
        }
    }
    // A crash, not a clean close: the next open reads every entry, which
    // takes a while (the seal of a clean close would skip that).
    let marker = dir.join("frontdesk-store.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    m["seal"] = serde_json::Value::Null;
    std::fs::write(&marker, m.to_string()).unwrap();
    std::panic::set_hook(Box::new(|_| {
        SEEN.fetch_add(1, Ordering::SeqCst);
    }));
    let opener = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        drop(SledStore::open(&dir).unwrap());
        t.elapsed()
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = std::thread::spawn(|| panic!("a handler's bug")).join();
    let took = opener.join().unwrap();
    let _ = std::panic::take_hook();
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        1,
        "a panic on another thread while the store opened ({took:?}) reached no hook"
    );
}
