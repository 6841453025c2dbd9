//! Fuzzing on the stable toolchain: property-based targets (proptest) for
//! the parts that take input from outside.
//!
//! - `intents`: the intent-file loader on arbitrary bytes and on mutations
//!   of the shipped `intents/*.toml` (the seed corpus);
//! - `classify`: the classifier and the decision policy on arbitrary text;
//! - `api`: arbitrary JSON and bytes POSTed to every JSON endpoint of the
//!   real server, in-process on port 0 over real HTTP;
//! - `conversation`: `conversation::step` on arbitrary input sequences,
//!   folded into the state as the app does.
//!
//! Each target runs a bounded number of cases (its `DEFAULT_CASES`, chosen
//! so the whole binary takes about 80 s in the dev profile on a busy
//! 2-core machine; the mutated intent sets, each trained, take most of
//! it); `FUZZ_CASES=N` runs N cases per target instead.
//! Failures are saved under `tests/fuzz/regressions/` and replayed first on
//! every later run: commit them with the fix. Not part of plain
//! `cargo test`; `.ci/run` runs it as `cargo test --test fuzz`.

mod api;
mod classify;
mod conversation;
mod intents;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use frontdesk::classify::Classifier;
use frontdesk::conversation::Decide;
use proptest::test_runner::{Config, FileFailurePersistence};

/// The proptest configuration of one target: `default_cases` unless
/// `FUZZ_CASES` says otherwise, failures persisted to `regressions`
/// (relative to the package root, where cargo runs tests).
pub fn config(default_cases: u32, regressions: &'static str) -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // Shrinking a slow case (a whole intent set, an HTTP exchange)
        // thousands of times would outlast CI; a few hundred steps get
        // most failures small enough to read.
        max_shrink_iters: 512,
        ..Config::default()
    }
}

/// The shipped intents: the loader's mutation seeds and the set the other
/// targets classify with.
pub fn shipped_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents"))
}

/// The shipped intent files as (file name, bytes), sorted by name.
pub fn shipped_files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(shipped_dir())
            .expect("intents/ is readable")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).expect("intent file is readable"))
            })
            .collect();
        files.sort();
        assert!(files.len() > 5, "the shipped intents are the seed corpus");
        files
    })
}

/// One classifier over the shipped intents, built once per process.
pub fn shipped_classifier() -> Arc<Classifier> {
    static C: OnceLock<Arc<Classifier>> = OnceLock::new();
    C.get_or_init(|| Arc::new(Classifier::load(shipped_dir()).expect("the shipped intents load")))
        .clone()
}

/// Lines of a committed seed file (`tests/fuzz/seeds/NAME`), with `\u{…}`
/// escapes decoded so invisible characters stay readable in the file.
/// Blank lines and lines starting with `#` are skipped.
pub fn seed_lines(name: &str) -> Vec<String> {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/seeds")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(unescape)
        .collect()
}

/// Decodes `\u{XXXX}` and `\n`; anything else is kept as written.
fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(tail) = rest.strip_prefix("\\n") {
            out.push('\n');
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("\\u{") {
            let end = tail.find('}').unwrap_or(0);
            match u32::from_str_radix(&tail[..end], 16)
                .ok()
                .and_then(char::from_u32)
            {
                Some(c) => {
                    out.push(c);
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push('\\');
                    rest = &rest[1..];
                }
            }
        } else {
            out.push('\\');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Texts an intent set knows well: every example, keyword, test and quick
/// reply of the shipped files, so generated messages hit rules and the
/// lexical model, not only the fallback.
pub fn shipped_phrases() -> &'static [String] {
    static P: OnceLock<Vec<String>> = OnceLock::new();
    P.get_or_init(|| {
        let c = shipped_classifier();
        let mut out = Vec::new();
        for i in &c.intents().intents {
            out.extend(i.examples.iter().cloned());
            out.extend(i.keywords.iter().map(|k| k.phrase.clone()));
            out.extend(i.tests.iter().map(|t| t.text.clone()));
            out.extend(i.quick_replies.iter().cloned());
            out.push(i.label().to_string());
        }
        out.extend(c.intents().out_of_scope.iter().cloned());
        out
    })
}
