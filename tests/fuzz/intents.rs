//! The intent-file loader (what `frontdesk check` runs: load, validate,
//! train, run the inline tests) on arbitrary files and on mutations of the
//! shipped set, written into a temp dir. Invariants: it never panics; every
//! error starts `path:line:col: ` with a file of the set (or the directory,
//! for a set-wide problem) and a line and column inside that file; a set
//! that loads classifies a message.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestRunner;

use frontdesk::classify::Classifier;
use frontdesk::conversation::Decide;
use frontdesk::intents::ErrorKind;

const ARBITRARY_CASES: u32 = 1500;
const MUTATED_CASES: u32 = 80;

/// One edit of one file.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Delete {
        at: Index,
        len: usize,
    },
    /// A line of one shipped file inserted into this one.
    SpliceLine {
        from: Index,
        line: Index,
        at: Index,
    },
    DropLine {
        line: Index,
    },
    DuplicateLine {
        line: Index,
    },
    /// `key = value` with the value replaced by one of another type.
    ChangeType {
        line: Index,
        value: &'static str,
    },
}

/// Bytes TOML and the loader care about.
const SPECIAL: &[u8] = b"\"'[]{}=#\\\n\r\t ,.0_aZ\x00\x7f\xc3\xa9\xff\xfe\xef\xbb\xbf";

/// Values of every TOML type (and some the loader must reject).
const VALUES: &[&str] = &[
    "1",
    "-0.5",
    "nan",
    "inf",
    "1e400",
    "true",
    "\"\"",
    "\"   \"",
    "\"{name} {order_id} {\"",
    "'(unclosed'",
    "'[A-Z]+'",
    "'\\bcafé\\b'",
    "[]",
    "[1, 2]",
    "[\"\", \"x\"]",
    "[[\"nested\"]]",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"handoff\"",
    "\"explode\"",
    "[{ name = \"order_id\", pattern = '\\d+', prompt = \"{x}\" }]",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (
            any::<Index>(),
            prop::collection::vec(prop_oneof![select(SPECIAL), any::<u8>()], 1..8)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<Index>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, line, at)| Mutation::SpliceLine { from, line, at }),
        any::<Index>().prop_map(|line| Mutation::DropLine { line }),
        any::<Index>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<Index>(), select(VALUES))
            .prop_map(|(line, value)| Mutation::ChangeType { line, value }),
    ]
}

/// Lines with their line ends, so joining them gives the bytes back.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let seeds = crate::shipped_files();
    match m {
        Mutation::FlipBit { at, bit } if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert { at, bytes: new } => {
            let i = at.index(bytes.len() + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Delete { at, len } if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::SpliceLine { from, line, at } => {
            let source = lines(&seeds[from.index(seeds.len())].1);
            let mut l = source[line.index(source.len())].clone();
            if l.last() != Some(&b'\n') {
                l.push(b'\n');
            }
            let mut ls = lines(bytes);
            let at = at.index(ls.len() + 1);
            ls.insert(at, l);
            *bytes = ls.concat();
        }
        Mutation::DropLine { line } if !bytes.is_empty() => {
            let mut ls = lines(bytes);
            ls.remove(line.index(ls.len()));
            *bytes = ls.concat();
        }
        Mutation::DuplicateLine { line } if !bytes.is_empty() => {
            let mut ls = lines(bytes);
            let i = line.index(ls.len());
            let l = ls[i].clone();
            ls.insert(i, l);
            *bytes = ls.concat();
        }
        Mutation::ChangeType { line, value } => {
            let mut ls = lines(bytes);
            // Only lines that assign: the value is what changes type.
            let assigns: Vec<usize> = (0..ls.len())
                .filter(|&i| ls[i].contains(&b'=') && !ls[i].starts_with(b"#"))
                .collect();
            if assigns.is_empty() {
                return;
            }
            let i = assigns[line.index(assigns.len())];
            let eq = ls[i].iter().position(|b| *b == b'=').unwrap_or(0);
            let mut l = ls[i][..=eq].to_vec();
            l.push(b' ');
            l.extend_from_slice(value.as_bytes());
            l.push(b'\n');
            ls[i] = l;
            *bytes = ls.concat();
        }
        _ => {}
    }
}

/// Writes `files` into a fresh temp dir.
fn write_set(files: &[(String, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write intent file");
    }
    dir
}

/// Loads `dir` the way `frontdesk check` does and checks every invariant;
/// a set that loads must classify `message` (and a few fixed ones).
fn check_load(dir: &Path, files: &[(String, Vec<u8>)], message: &str) -> Result<(), TestCaseError> {
    match Classifier::load(dir) {
        Ok(classifier) => {
            let n = classifier.intents().intents.len();
            prop_assert!(n > 0, "a set that loads has intents");
            for text in ["how much is shipping?", "", "\u{202e}!!!\u{0}", message] {
                let outcome = classifier.decide(text);
                crate::classify::check_outcome(&outcome, n)?;
            }
        }
        Err(errors) => {
            prop_assert!(!errors.0.is_empty(), "a failed load names a problem");
            let shown = errors.to_string();
            let lines: Vec<&str> = shown.lines().collect();
            for e in &errors.0 {
                let prefix = format!("{}:{}:{}: ", e.path.display(), e.line, e.col);
                prop_assert!(
                    lines
                        .iter()
                        .any(|l| l.starts_with(&prefix) && l.len() > prefix.len()),
                    "no `{}message` line in:\n{}",
                    prefix,
                    shown
                );
                let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
                let file = files.iter().find(|(f, _)| Some(f) == name.as_ref());
                match file {
                    Some((_, bytes)) => {
                        prop_assert_eq!(e.path.parent(), Some(dir), "{}", e);
                        let text = String::from_utf8_lossy(bytes);
                        let text_lines: Vec<&str> = text.split('\n').collect();
                        prop_assert!(
                            e.line >= 1 && e.line <= text_lines.len(),
                            "line {} outside the file's {} lines: {}",
                            e.line,
                            text_lines.len(),
                            e
                        );
                        let width = text_lines[e.line - 1].chars().count();
                        prop_assert!(
                            e.col >= 1 && e.col <= width + 1,
                            "column {} outside line {} ({} chars): {}",
                            e.col,
                            e.line,
                            width,
                            e
                        );
                    }
                    None => {
                        // Only a problem of the whole set names the directory.
                        prop_assert_eq!(&e.path, &dir.to_path_buf(), "{} names no file", e);
                        prop_assert!(
                            matches!(e.kind, ErrorKind::NoIntents | ErrorKind::Io(_)),
                            "{}",
                            e
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// File names a directory may hold: ids, special files, invalid stems.
fn file_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,10}",
        1 => Just("_out_of_scope".to_string()),
        1 => Just("_calibration".to_string()),
        1 => "[A-Za-z0-9_é-]{1,8}",
    ]
    .prop_map(|stem| format!("{stem}.toml"))
}

/// TOML-ish text: lines of known keys with values of any type.
fn tomlish() -> impl Strategy<Value = Vec<u8>> {
    let key = select(
        &[
            "description",
            "keywords",
            "patterns",
            "examples",
            "answer",
            "quick_replies",
            "action",
            "threshold",
            "tests",
            "[[slots]]",
            "name",
            "pattern",
            "prompt",
            "answer",
            "clarify",
            "margin",
            "clarify_coverage",
            "fingerprint",
            "[intents]",
            "unknown_field",
        ][..],
    );
    let value = prop_oneof![
        select(VALUES).prop_map(str::to_string),
        select(crate::shipped_phrases()).prop_map(|p| format!("{p:?}")),
        select(crate::shipped_phrases()).prop_map(|p| format!("[{p:?}]")),
        any::<f64>().prop_map(|f| f.to_string()),
    ];
    prop::collection::vec((key, value), 0..10).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| {
                if k.starts_with('[') {
                    format!("{k}\n")
                } else {
                    format!("{k} = {v}\n")
                }
            })
            .collect::<String>()
            .into_bytes()
    })
}

/// One file's contents: arbitrary bytes, arbitrary text, TOML-ish lines,
/// or a shipped file.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..400),
        2 => prop::collection::vec(any::<char>(), 0..200)
            .prop_map(|c| String::from_iter(c).into_bytes()),
        4 => tomlish(),
        1 => select(crate::shipped_files()).prop_map(|(_, b)| b),
    ]
}

#[test]
fn load_arbitrary_files() {
    // Unchanged since its seed in regressions/ was saved: a seed replays
    // the same case only under the same strategy.
    let strategy = prop::collection::vec((file_name(), contents()), 0..4);
    let mut runner = TestRunner::new(crate::config(
        ARBITRARY_CASES,
        "tests/fuzz/regressions/intents_arbitrary.txt",
    ));
    runner
        .run(&strategy, |files| {
            let mut files = files;
            files.sort_by(|a, b| a.0.cmp(&b.0));
            files.dedup_by(|a, b| a.0 == b.0);
            let dir = write_set(&files);
            check_load(dir.path(), &files, "where is my order 12345678")
        })
        .unwrap();
}

/// Names a file may be renamed to: invalid ids, and names the loader
/// skips. None of them is a shipped name, so a rename never collides.
const RENAMES: &[&str] = &[
    "Bad-Name.toml",
    "1st.toml",
    "_extra.toml",
    "café.toml",
    "two words.toml",
    "shipping_cost.TOML",
    "notes.txt",
    ".toml",
];

/// A `_calibration.toml` with values in and out of range, of the wrong
/// type, and naming known and unknown intents.
fn calibration() -> impl Strategy<Value = Vec<u8>> {
    let num = || {
        prop_oneof![
            3 => (0.0f64..=1.0).prop_map(|f| format!("{f}")),
            1 => select(&["0", "1", "nan", "-inf", "-0.5", "1.5", "\"0.5\"", "[]"][..])
                .prop_map(str::to_string),
        ]
    };
    let ids: Vec<String> = crate::shipped_files()
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".toml"))
        .filter(|n| !n.starts_with('_'))
        .map(str::to_string)
        .chain(["no_such_intent".to_string()])
        .collect();
    (
        num(),
        num(),
        prop::option::of(num()),
        prop::option::of(num()),
        prop::collection::vec((select(ids), num()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(answer, clarify, margin, coverage, intents, stale)| {
            let mut s = format!("measured_on = \"fuzz\"\nanswer = {answer}\nclarify = {clarify}\n");
            if stale {
                s.push_str("fingerprint = \"0000000000000000\"\n");
            }
            if let Some(m) = margin {
                s.push_str(&format!("margin = {m}\n"));
            }
            if let Some(c) = coverage {
                s.push_str(&format!("clarify_coverage = {c}\n"));
            }
            if !intents.is_empty() {
                s.push_str("[intents]\n");
                for (id, v) in intents {
                    s.push_str(&format!("{id} = {v}\n"));
                }
            }
            s.into_bytes()
        })
}

#[test]
fn load_mutated_shipped_set() {
    let seeds = crate::shipped_files();
    let strategy = (
        prop::collection::vec((any::<Index>(), mutation()), 0..4),
        prop::option::weighted(0.1, (any::<Index>(), select(RENAMES))),
        prop::option::weighted(0.2, calibration()),
        crate::classify::message(),
    );
    let mut runner = TestRunner::new(crate::config(
        MUTATED_CASES,
        "tests/fuzz/regressions/intents_mutated.txt",
    ));
    runner
        .run(&strategy, |(edits, rename, calibration, message)| {
            let mut files: Vec<(String, Vec<u8>)> = seeds.to_vec();
            for (which, m) in &edits {
                let i = which.index(files.len());
                apply(&mut files[i].1, m);
            }
            if let Some((which, to)) = rename {
                let i = which.index(files.len());
                files[i].0 = to.to_string();
            }
            if let Some(body) = calibration {
                files.push((frontdesk::intents::CALIBRATION_FILE.to_string(), body));
            }
            let dir = write_set(&files);
            check_load(dir.path(), &files, &message)
        })
        .unwrap();
}

/// The directory the loader was given does not exist: one error, naming it.
#[test]
fn load_missing_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing: PathBuf = dir.path().join("nope");
    let errors = Classifier::load(&missing).expect_err("nothing to load");
    assert_eq!(errors.0.len(), 1);
    assert!(errors
        .to_string()
        .starts_with(&format!("{}:1:1: ", missing.display())));
}
