//! Intent files edited from the admin page.
//!
//! Every change is validated exactly as `frontdesk check` validates a
//! directory (`Decide::load`: the whole set loads, compiles and passes its
//! inline tests) on a staging copy of the intents directory with the
//! change applied; only a set that passes is written. The write is atomic:
//! a temporary file in the same directory, fsync, rename over the file,
//! fsync the directory; a crash leaves the old file or the new one, never
//! half of one. Structured edits go through `toml_edit`, so the admin's
//! comments, order and layout survive and the git diff is the change.
//!
//! Names are `[a-z0-9_-]+.toml` directly in the intents directory: no path
//! separators, no `..`, nothing hidden. Each read carries a `version` (the
//! SHA-256 of the bytes); a write names the version it was based on and is
//! refused when the file changed since (`Stale`), so two admins cannot
//! silently overwrite each other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use toml_edit::{value, Array, DocumentMut, Item};

use crate::classify::{Classifier, Model};
use crate::intents::{valid_id, LoadErrors};
use crate::util::normalize::normalize;

/// What can go wrong with an edit.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(
        "invalid file name {0:?}: use lowercase letters, digits, `_` and `-`, ending in .toml"
    )]
    BadName(String),
    #[error("invalid intent id {0:?}: lowercase letters, digits and `_`, starting with a letter")]
    BadId(String),
    #[error("no intent file {0}")]
    NotFound(String),
    #[error("no intent `{0}`")]
    NoIntent(String),
    #[error("{0} exists already")]
    Exists(String),
    #[error("{name} changed since it was loaded (base {base}, now {now}); load it again")]
    Stale {
        name: String,
        base: String,
        now: String,
    },
    #[error("{0}")]
    Request(String),
    /// The change does not validate; nothing was written.
    #[error("{0}")]
    Invalid(LoadErrors),
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
}

fn io(path: &Path, e: std::io::Error) -> EditError {
    EditError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One intent file as read.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentFile {
    pub name: String,
    pub toml: String,
    /// `sha256:<hex>` of the bytes: the base of a later write.
    pub version: String,
}

/// A listed intent file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub version: String,
    pub bytes: u64,
}

/// The version of a file's bytes.
pub fn version_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::util::hash::hex(&Sha256::digest(bytes)))
}

/// Checks a file name: `[a-z0-9_-]+.toml`, nothing else.
pub fn check_name(name: &str) -> Result<(), EditError> {
    let ok = name.strip_suffix(".toml").is_some_and(|stem| {
        !stem.is_empty()
            && stem.len() <= 64
            && stem
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err(EditError::BadName(name.chars().take(80).collect()))
    }
}

/// The intent files of `dir`, by name.
pub fn list(dir: &Path) -> Result<Vec<FileEntry>, EditError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let e = e.map_err(|e| io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_err() || !e.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(e.path()).map_err(|err| io(&e.path(), err))?;
        out.push(FileEntry {
            name,
            version: version_of(&bytes),
            bytes: bytes.len() as u64,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads one intent file.
pub fn read(dir: &Path, name: &str) -> Result<IntentFile, EditError> {
    check_name(name)?;
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EditError::NotFound(name.into()))
        }
        Err(e) => return Err(io(&path, e)),
    };
    Ok(IntentFile {
        name: name.into(),
        version: version_of(&bytes),
        toml: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// One write at a time per process: a stale-base check and the rename it
/// guards must not interleave with another write.
static WRITE: Mutex<()> = Mutex::new(());

/// Validates `dir` with `name` holding `text`, in memory: the files of
/// `dir` are read, the edit takes `name`'s place, and the set is built
/// with `model` (the one the app runs with, so a set that validates here
/// also loads there) and its inline tests run as `frontdesk check` does,
/// with errors at `dir/name:line:col`. Nothing is written anywhere (a
/// staging copy in the shared temp directory could be made to write
/// through planted links). Returns the built set, to serve as it is.
pub fn validate(dir: &Path, name: &str, text: &str, model: &Model) -> Result<Built, EditError> {
    let files = std::collections::BTreeMap::from([(name.to_string(), text.to_string())]);
    crate::replay::edited_set(dir, &files, model)
        .map(|(classifier, digest)| Built { classifier, digest })
        .map_err(EditError::Invalid)
}

/// The set a save validated: what the app swaps in instead of loading
/// the directory again.
#[derive(Debug, Clone)]
pub struct Built {
    pub classifier: Classifier,
    /// The digest of the files it was built from (`replay::dir_digest`
    /// of the directory once the write is done).
    pub digest: String,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file's version now.
    pub version: String,
    /// False when the text was the file's already: nothing was validated
    /// or written (there is nothing to reload either).
    pub changed: bool,
    /// The validated set with the write in it (`None` when unchanged).
    pub built: Option<Built>,
}

/// Writes `name` in `dir` if the whole set validates with it (built with
/// `model`) and the file is still at `base` (`None`: the file must not
/// exist yet).
pub fn write(
    dir: &Path,
    name: &str,
    text: &str,
    base: Option<&str>,
    model: &Model,
) -> Result<Written, EditError> {
    check_name(name)?;
    let _guard = WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(name);
    let now = match std::fs::read(&path) {
        Ok(b) => Some(version_of(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path, e)),
    };
    match (base, &now) {
        (None, Some(_)) => return Err(EditError::Exists(name.into())),
        (Some(_), None) => return Err(EditError::NotFound(name.into())),
        (Some(b), Some(n)) if b != n => {
            return Err(EditError::Stale {
                name: name.into(),
                base: b.into(),
                now: n.clone(),
            })
        }
        _ => {}
    }
    let version = version_of(text.as_bytes());
    if now.as_deref() == Some(version.as_str()) {
        return Ok(Written {
            version,
            changed: false,
            built: None,
        });
    }
    let built = validate(dir, name, text, model)?;
    write_atomic(dir, name, text.as_bytes())?;
    Ok(Written {
        version,
        changed: true,
        built: Some(built),
    })
}

/// Temp file in the same directory (ignored by the loader: not `.toml`),
/// fsync, rename, fsync the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), EditError> {
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        // A leftover of a crashed write (or anything planted under that
        // name) is removed, never written through.
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name)).map_err(|e| io(&tmp, e))?;
        // The rename is durable once the directory is.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fields of an intent the form edits; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub description: Option<String>,
    pub examples: Option<Vec<String>>,
    pub keywords: Option<Vec<String>>,
    /// One answer, or several rotated between.
    pub answers: Option<Vec<String>>,
    pub quick_replies: Option<Vec<String>>,
    /// `Some(None)` removes the intent's own threshold.
    pub threshold: Option<Option<f64>>,
}

/// An array of strings: one item a line when there are more than two, or
/// when `multiline` says the array it replaces was written that way.
fn array(items: &[String], multiline: Option<bool>) -> Item {
    let mut a = Array::new();
    for s in items {
        a.push(s.as_str());
    }
    if multiline.unwrap_or(a.len() > 2) {
        for v in a.iter_mut() {
            v.decor_mut().set_prefix("\n  ");
        }
        a.set_trailing("\n");
        a.set_trailing_comma(true);
    }
    value(a)
}

/// Whether an existing array is written one item a line.
fn is_multiline(item: Option<&Item>) -> Option<bool> {
    let a = item?.as_array()?;
    let first = a.iter().next()?;
    Some(
        first
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .is_some_and(|p| p.contains('\n')),
    )
}

fn parse(name: &str, text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Request(format!("{name} is not valid TOML: {e}")))
}

/// Applies `fields` to an intent file's text, keeping everything else.
/// A field whose value is unchanged is left alone (its comments and
/// layout too); a changed array keeps the one-item-a-line style it had.
pub fn apply(name: &str, text: &str, fields: &Fields) -> Result<String, EditError> {
    let mut doc = parse(name, text)?;
    let was = fields_of(text).unwrap_or_default();
    if let Some(d) = &fields.description {
        if was.description.as_ref() != Some(d) {
            doc["description"] = value(d.as_str());
        }
    }
    for (key, v, old) in [
        ("examples", &fields.examples, &was.examples),
        ("keywords", &fields.keywords, &was.keywords),
        ("quick_replies", &fields.quick_replies, &was.quick_replies),
    ] {
        let Some(items) = v else { continue };
        if old.as_deref().unwrap_or_default() == items.as_slice() {
            continue;
        }
        if items.is_empty() {
            doc.remove(key);
        } else {
            let multiline = is_multiline(doc.get(key));
            doc[key] = array(items, multiline);
        }
    }
    if let Some(answers) = &fields.answers {
        if was.answers.as_ref() != Some(answers) {
            let multiline = is_multiline(doc.get("answer"));
            doc["answer"] = match answers.as_slice() {
                [one] => value(one.as_str()),
                many => array(many, multiline),
            };
        }
    }
    match fields.threshold {
        Some(t) if was.threshold == Some(t) => {}
        Some(Some(t)) => doc["threshold"] = value(t),
        Some(None) => {
            doc.remove("threshold");
        }
        None => {}
    }
    Ok(doc.to_string())
}

/// The form's fields of an intent file, read from its text (`None` when it
/// is not TOML). Values of the wrong type read as absent.
pub fn fields_of(text: &str) -> Option<Fields> {
    let doc = text.parse::<DocumentMut>().ok()?;
    let strings = |key: &str| -> Option<Vec<String>> {
        Some(
            doc.get(key)?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    };
    let answers = match doc.get("answer") {
        Some(item) => match item.as_str() {
            Some(one) => Some(vec![one.to_string()]),
            None => strings("answer"),
        },
        None => None,
    };
    Some(Fields {
        description: doc
            .get("description")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        examples: strings("examples"),
        keywords: strings("keywords"),
        answers,
        quick_replies: strings("quick_replies"),
        threshold: Some(
            doc.get("threshold")
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))),
        ),
    })
}

/// Adds examples to an intent file's `examples`, skipping any it already
/// has (compared normalised); returns the text and how many were added.
pub fn add_examples(
    name: &str,
    text: &str,
    examples: &[String],
) -> Result<(String, usize), EditError> {
    let mut doc = parse(name, text)?;
    let item = doc.entry("examples").or_insert_with(|| value(Array::new()));
    let Some(arr) = item.as_array_mut() else {
        return Err(EditError::Request(format!(
            "{name}: `examples` is not an array"
        )));
    };
    let mut have: Vec<String> = arr
        .iter()
        .filter_map(|v| v.as_str().map(normalize))
        .collect();
    let multiline = arr.len() > 2
        && arr
            .iter()
            .next()
            .and_then(|v| v.decor().prefix())
            .and_then(|p| p.as_str())
            .is_some_and(|p| p.contains('\n'));
    let mut added = 0;
    for ex in examples {
        let n = normalize(ex);
        if n.is_empty() || have.contains(&n) {
            continue;
        }
        have.push(n);
        arr.push(ex.trim());
        if multiline {
            if let Some(v) = arr.iter_mut().last() {
                v.decor_mut().set_prefix("\n  ");
            }
            arr.set_trailing_comma(true);
            arr.set_trailing("\n");
        }
        added += 1;
    }
    Ok((doc.to_string(), added))
}

/// A new intent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewIntent {
    pub id: String,
    pub description: Option<String>,
    pub examples: Vec<String>,
    pub answers: Vec<String>,
    pub keywords: Vec<String>,
    pub quick_replies: Vec<String>,
    pub threshold: Option<f64>,
}

/// The text of a new intent's file (validation is `write`'s job).
pub fn new_intent_text(new: &NewIntent) -> Result<String, EditError> {
    if !valid_id(&new.id) {
        return Err(EditError::BadId(new.id.chars().take(80).collect()));
    }
    let mut doc = DocumentMut::new();
    // Every intent needs one; without it, the id in words.
    let description = match new.description.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => d.to_string(),
        _ => new.id.replace('_', " "),
    };
    doc["description"] = value(description);
    let fields = Fields {
        description: None,
        examples: Some(new.examples.clone()),
        keywords: Some(new.keywords.clone()),
        answers: Some(new.answers.clone()).filter(|a| !a.is_empty()),
        quick_replies: Some(new.quick_replies.clone()),
        threshold: Some(new.threshold),
    };
    let mut text = apply(&format!("{}.toml", new.id), &doc.to_string(), &fields)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The file (name) that holds intent `id` in `dir`.
pub fn file_of(dir: &Path, id: &str) -> Result<String, EditError> {
    if !valid_id(id) {
        return Err(EditError::BadId(id.chars().take(80).collect()));
    }
    let name = format!("{id}.toml");
    if dir.join(&name).is_file() {
        Ok(name)
    } else {
        Err(EditError::NoIntent(id.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a.toml",
            "shipping_cost.toml",
            "_out_of_scope.toml",
            "x-1.toml",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".toml",
            "../x.toml",
            "a/b.toml",
            "A.toml",
            "a.txt",
            "a.toml.bak",
            "..",
            "a b.toml",
            "/etc/passwd",
            "a\\b.toml",
            "é.toml",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn edits_keep_comments_and_layout() {
        let text = "# the shop's gift cards\ndescription = \"Gift cards\"\nexamples = [\n  \"do you sell gift cards\",\n  \"gift card balance\",\n  \"can I buy a voucher\",\n]\nanswer = \"Yes.\" # keep\n";
        let (out, n) = add_examples(
            "g.toml",
            text,
            &[
                "Gift card balance?".into(),
                "are vouchers refundable".into(),
            ],
        )
        .unwrap();
        assert_eq!(n, 1, "the duplicate (normalised) is skipped");
        assert_eq!(
            out,
            "# the shop's gift cards\ndescription = \"Gift cards\"\nexamples = [\n  \"do you sell gift cards\",\n  \"gift card balance\",\n  \"can I buy a voucher\",\n  \"are vouchers refundable\",\n]\nanswer = \"Yes.\" # keep\n"
        );
        let out = apply(
            "g.toml",
            text,
            &Fields {
                answers: Some(vec!["No.".into()]),
                threshold: Some(Some(0.5)),
                ..Fields::default()
            },
        )
        .unwrap();
        assert!(out.starts_with("# the shop's gift cards\n"), "{out}");
        assert!(out.contains("answer = \"No.\""), "{out}");
        assert!(out.contains("threshold = 0.5"), "{out}");
    }

    #[test]
    fn a_form_save_changes_only_what_changed() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents/shipping_cost.toml"),
        )
        .unwrap();
        let mut f = fields_of(&text).unwrap();
        assert_eq!(apply("s.toml", &text, &f).unwrap(), text, "nothing changed");
        f.quick_replies = Some(vec!["Delivery times".into()]);
        f.keywords.as_mut().unwrap().push("postage cost".into());
        let out = apply("s.toml", &text, &f).unwrap();
        let changed: Vec<&str> = out
            .lines()
            .filter(|l| !text.lines().any(|t| t == *l))
            .collect();
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(
            changed[0].starts_with("keywords = [\"shipping cost\""),
            "one line as before: {changed:?}"
        );
        assert!(changed[0].ends_with(", \"postage cost\"]"), "{changed:?}");
        assert_eq!(changed[1], "quick_replies = [\"Delivery times\"]");
    }

    #[test]
    fn a_save_of_the_same_text_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let text = "description = \"d\"\nexamples = [\"hello there\"]\nanswer = \"hi\"\n";
        std::fs::write(dir.path().join("greet.toml"), text).unwrap();
        let v = version_of(text.as_bytes());
        let none = Model::none();
        let w = write(dir.path(), "greet.toml", text, Some(&v), &none).unwrap();
        assert_eq!((w.version.as_str(), w.changed), (v.as_str(), false));
        let stale = write(dir.path(), "greet.toml", "x", Some("sha256:00"), &none);
        assert!(matches!(stale, Err(EditError::Stale { .. })), "{stale:?}");
        let bad = write(dir.path(), "greet.toml", "answer = = 1", Some(&v), &none);
        assert!(matches!(bad, Err(EditError::Invalid(_))), "{bad:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("greet.toml")).unwrap(),
            text
        );
        let ok = text.replace("hi", "hello");
        assert!(
            write(dir.path(), "greet.toml", &ok, Some(&v), &none)
                .unwrap()
                .changed
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("greet.toml")).unwrap(),
            ok
        );
    }

    #[test]
    fn fields_read_back() {
        let f = fields_of("description = \"d\"\nexamples = [\"a\", \"b\"]\nanswer = [\"x\", \"y\"]\nthreshold = 0.4\n").unwrap();
        assert_eq!(f.examples, Some(vec!["a".into(), "b".into()]));
        assert_eq!(f.answers, Some(vec!["x".into(), "y".into()]));
        assert_eq!(f.threshold, Some(Some(0.4)));
        assert_eq!(f.keywords, None);
        assert!(fields_of("a = = 1").is_none());
    }

    #[test]
    fn new_intent_file() {
        let text = new_intent_text(&NewIntent {
            id: "gift_wrap".into(),
            examples: vec!["gift wrap?".into()],
            answers: vec!["Yes, 3 EUR.".into()],
            ..NewIntent::default()
        })
        .unwrap();
        assert_eq!(
            text,
            "description = \"gift wrap\"\nexamples = [\"gift wrap?\"]\nanswer = \"Yes, 3 EUR.\"\n"
        );
        assert!(new_intent_text(&NewIntent {
            id: "../x".into(),
            ..NewIntent::default()
        })
        .is_err());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// Validation writes nowhere: a local user who plants files or links
    /// where a staging copy would go (the shared temp directory) cannot
    /// make a save write through them.
    #[cfg(unix)]
    #[test]
    fn validating_an_edit_writes_nothing_outside_memory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        let planted = tempfile::tempdir().expect("temp dir");
        let sentinel = planted.path().join("sentinel");
        std::fs::write(&sentinel, "untouched").expect("sentinel");
        let mut traps = Vec::new();
        for n in 0..2_000 {
            let stage =
                std::env::temp_dir().join(format!("frontdesk-edit-{}-{n}", std::process::id()));
            if std::fs::create_dir(&stage).is_ok() {
                std::os::unix::fs::symlink(&sentinel, stage.join("shipping_cost.toml"))
                    .expect("link");
                traps.push(stage);
            }
        }
        let text = std::fs::read_to_string(dir.join("shipping_cost.toml")).expect("read");
        let result = validate(&dir, "shipping_cost.toml", &text, &Model::none());
        for t in &traps {
            let _ = std::fs::remove_dir_all(t);
        }
        assert_eq!(
            std::fs::read_to_string(&sentinel).expect("sentinel"),
            "untouched",
            "validation wrote through a planted link"
        );
        assert!(result.is_ok(), "{result:?}");
    }
}
