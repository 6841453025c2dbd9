//! Integration tests: the library's load path and the real `frontdesk`
//! binary, on intent directories written into temp dirs.

mod classify;
mod cli;
pub mod pg;
mod pg_nodes;
mod server;
mod shop;
mod spy;
mod store;
mod store_app;
mod store_contract;
mod store_damage;
mod store_pg;
mod store_review;
mod validation;
mod wire;

use std::path::Path;

/// Writes `files` (name, contents) into a fresh temp dir.
pub fn intent_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).expect("write intent file");
    }
    dir
}

/// A valid intent file body with the given extra lines.
pub fn intent(extra: &str) -> String {
    format!(
        "description = \"test intent\"\nanswer = \"ok\"\nexamples = [\"how much is shipping\", \"shipping price\"]\n{extra}"
    )
}

/// The repository's default intents.
pub fn default_intents() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents"))
}

/// A temp copy of the repository's intents.
pub fn intents_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for e in std::fs::read_dir(default_intents()).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

/// sled opened raw on a store a `SledStore` held a moment ago (to make the
/// state an older version or a crash left). The dropped store may still
/// hold sled's file lock while its background threads wind down, as
/// `SledStore::open` knows and waits for; a raw open must wait too, or the
/// test fails on a busy machine.
pub fn raw_sled(dir: &Path) -> sled::Db {
    let waiting = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e)
                if frontdesk::store::sled_lock_busy(&e)
                    && waiting.elapsed() < std::time::Duration::from_secs(30) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("raw sled open of {}: {e}", dir.display()),
        }
    }
}
