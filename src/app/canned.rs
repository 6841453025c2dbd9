//! Canned replies: the team's saved answers, in `canned.toml` beside the
//! intents directory (`<intents_dir>/../canned.toml`; README, "Canned
//! replies"). Checked like an intent file, every problem at its
//! `path:line:col`; a file that fails leaves the last good set serving.
//! The file is looked at (size and modification time) whenever the set is
//! asked for, so an edit made on disk is picked up without a restart, like
//! the intents; an edit from the admin page is validated first and written
//! atomically. A missing file is an empty set.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;

use super::*;
use crate::intents::error::line_col;

/// One saved reply.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CannedReply {
    /// What the list shows and the search matches.
    pub title: String,
    /// Typed after `/` to find it at once (optional; unique).
    pub shortcut: Option<String>,
    /// The text inserted; `{name}` becomes the visitor's name.
    pub text: String,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    reply: Vec<toml::Spanned<RawReply>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    title: toml::Spanned<String>,
    #[serde(default)]
    shortcut: Option<toml::Spanned<String>>,
    text: toml::Spanned<String>,
}

/// Longest title, in characters.
const TITLE_CHARS: usize = 80;
/// Longest text, in characters (the longest message an agent may send).
const TEXT_CHARS: usize = 2000;
/// Most replies in the file.
const MAX_REPLIES: usize = 500;

/// Checks the text of a canned-replies file; `path` is what errors name.
/// Every problem is listed, as `path:line:col: message`.
pub fn parse(path: &Path, source: &str) -> Result<Vec<CannedReply>, Vec<String>> {
    let at = |offset: usize, message: String| {
        let (line, col) = line_col(source, offset);
        format!("{}:{line}:{col}: {message}", path.display())
    };
    let raw: RawFile = match toml::from_str(source) {
        Ok(r) => r,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            return Err(vec![at(offset, e.message().to_string())]);
        }
    };
    let mut errors = Vec::new();
    let mut out: Vec<CannedReply> = Vec::new();
    if raw.reply.len() > MAX_REPLIES {
        errors.push(at(
            0,
            format!("{} replies: at most {MAX_REPLIES}", raw.reply.len()),
        ));
    }
    for r in &raw.reply {
        let r = r.get_ref();
        let title = r.title.get_ref().trim();
        if title.is_empty() {
            errors.push(at(r.title.span().start, "`title` must not be empty".into()));
        } else if title.chars().count() > TITLE_CHARS {
            errors.push(at(
                r.title.span().start,
                format!("`title` is longer than {TITLE_CHARS} characters"),
            ));
        } else if out.iter().any(|o| o.title.eq_ignore_ascii_case(title)) {
            errors.push(at(
                r.title.span().start,
                format!("title `{title}` is used twice"),
            ));
        }
        let shortcut = match &r.shortcut {
            None => None,
            Some(s) => {
                let v = s.get_ref().trim();
                let ok = !v.is_empty()
                    && v.len() <= 32
                    && v.chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    errors.push(at(
                        s.span().start,
                        format!("shortcut `{v}`: 1 to 32 letters, digits, `-` or `_`"),
                    ));
                } else if out.iter().any(|o| {
                    o.shortcut
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(v))
                }) {
                    errors.push(at(s.span().start, format!("shortcut `{v}` is used twice")));
                }
                Some(v.to_string())
            }
        };
        let text = r.text.get_ref();
        let text_at = r.text.span().start;
        if text.trim().is_empty() {
            errors.push(at(text_at, "`text` must not be empty".into()));
        } else if text.chars().count() > TEXT_CHARS {
            errors.push(at(
                text_at,
                format!("`text` is longer than {TEXT_CHARS} characters"),
            ));
        }
        if let Err(m) = placeholders(text) {
            errors.push(at(text_at, m));
        }
        out.push(CannedReply {
            title: title.to_string(),
            shortcut,
            text: text.trim().to_string(),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Only `{name}` may be filled in; a stray `{` is a mistake.
fn placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err("unclosed `{` in `text`".into());
        };
        let name = &after[..j];
        if name != "name" {
            return Err(format!(
                "placeholder `{{{name}}}` is not known: a canned reply fills in `{{name}}` only"
            ));
        }
        rest = &after[j + 1..];
    }
    Ok(())
}

/// `text` with `{name}` filled in.
pub fn fill(text: &str, name: &str) -> String {
    text.replace("{name}", name)
}

/// What the app keeps: the last good set, the errors of the file as it is
/// now (empty when it loads), and the stamp it was read at.
#[derive(Default)]
pub struct Canned {
    inner: Mutex<Loaded>,
}

#[derive(Default, Clone)]
struct Loaded {
    replies: Vec<CannedReply>,
    errors: Vec<String>,
    stamp: Option<(u64, Option<SystemTime>)>,
    read: bool,
}

/// The set and the state of its file, for the admin page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CannedView {
    /// The file's path.
    pub file: String,
    /// The file as written (empty when there is none).
    pub toml: String,
    /// The replies being served.
    pub replies: Vec<CannedReply>,
    /// Problems of the file on disk (`path:line:col: …`): while there are
    /// any, the last good set serves.
    pub errors: Vec<String>,
}

/// Where the canned replies of an intents directory live.
pub fn file_of(intents_dir: &Path) -> PathBuf {
    let dir = if intents_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        intents_dir
    };
    match dir.file_name() {
        Some(_) => dir.with_file_name("canned.toml"),
        None => dir.join("..").join("canned.toml"),
    }
}

fn stamp(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

impl App {
    pub fn canned_file(&self) -> PathBuf {
        file_of(&self.inner.config.server.intents_dir)
    }

    /// The canned replies, read again if the file changed since.
    pub fn canned(&self) -> Vec<CannedReply> {
        self.canned_loaded().replies
    }

    fn canned_loaded(&self) -> Loaded {
        let path = self.canned_file();
        let now = stamp(&path);
        let mut l = self
            .inner
            .canned
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !l.read || l.stamp != now {
            l.read = true;
            l.stamp = now;
            match std::fs::read_to_string(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    l.replies.clear();
                    l.errors.clear();
                }
                Err(e) => l.errors = vec![format!("{}: cannot read: {e}", path.display())],
                Ok(source) => match parse(&path, &source) {
                    Ok(r) => {
                        l.replies = r;
                        l.errors.clear();
                    }
                    Err(errors) => {
                        tracing::warn!(errors = ?errors, "canned replies not reloaded");
                        l.errors = errors;
                    }
                },
            }
        }
        l.clone()
    }

    /// The set with `{name}` filled in for conversation `id`'s visitor (or
    /// the neutral word the intents' answers use, `[texts] no_name`).
    pub fn canned_for(&self, id: &str) -> Result<Vec<CannedReply>, ApiError> {
        let log = self.inner.store.read(id, 0)?;
        if log.is_empty() {
            return Err(ApiError::not_found("conversation"));
        }
        let conv = Conversation::from_log(&log);
        let name = conv
            .visitor
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.inner.config.texts.no_name.clone());
        Ok(self
            .canned()
            .into_iter()
            .map(|r| CannedReply {
                text: fill(&r.text, &name),
                ..r
            })
            .collect())
    }

    /// The admin's view: the file, what serves, what is wrong.
    pub fn canned_view(&self) -> CannedView {
        let l = self.canned_loaded();
        let path = self.canned_file();
        CannedView {
            toml: std::fs::read_to_string(&path).unwrap_or_default(),
            file: path.display().to_string(),
            replies: l.replies,
            errors: l.errors,
        }
    }

    /// Replaces the file with `source` once it checks (422 with every
    /// problem otherwise, and the file untouched): written to a temporary
    /// file beside it, synced, renamed over it.
    pub fn save_canned(&self, source: &str) -> Result<CannedView, ApiError> {
        let path = self.canned_file();
        if let Err(errors) = parse(&path, source) {
            return Err(ApiError::invalid("invalid_canned", errors.join("\n")));
        }
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = path.with_extension("toml.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(source.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        };
        if let Err(e) = write() {
            tracing::error!(error = %e, path = %path.display(), "cannot write the canned replies");
            return Err(ApiError::internal());
        }
        Ok(self.canned_view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_loads_and_fills_in_the_name() {
        let src = "[[reply]]\ntitle = \"Ask for a photo\"\nshortcut = \"photo\"\ntext = \"Sorry, {name}! Could you send a photo?\"\n";
        let r = parse(Path::new("canned.toml"), src).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].shortcut.as_deref(), Some("photo"));
        assert_eq!(
            fill(&r[0].text, "Dana"),
            "Sorry, Dana! Could you send a photo?"
        );
    }

    #[test]
    fn problems_point_at_their_place() {
        let p = Path::new("canned.toml");
        for (src, expected) in [
            (
                "[[reply]]\ntitle = \"A\"\ntext = \"Hi {nmae}\"\n",
                "canned.toml:3:8: placeholder `{nmae}` is not known",
            ),
            (
                "[[reply]]\ntitle = \"\"\ntext = \"x\"\n",
                "canned.toml:2:9: `title` must not be empty",
            ),
            (
                "[[reply]]\ntitle = \"A\"\n",
                "canned.toml:1:1: missing field `text`",
            ),
            (
                "[[reply]]\ntitle = \"A\"\ntext = \"x\"\ncolour = 1\n",
                "canned.toml:4:1: unknown field `colour`",
            ),
            (
                "[[reply]]\ntitle = \"A\"\ntext = \"x {\"\n",
                "canned.toml:3:8: unclosed `{`",
            ),
            (
                "[[reply]]\ntitle = \"A\"\ntext = \"x\"\n[[reply]]\ntitle = \"a\"\ntext = \"y\"\n",
                "canned.toml:5:9: title `a` is used twice",
            ),
            (
                "[[reply]]\ntitle = \"A\"\nshortcut = \"no spaces\"\ntext = \"x\"\n",
                "canned.toml:3:12: shortcut `no spaces`",
            ),
            ("[[reply]\n", "canned.toml:1:"),
        ] {
            let e = parse(p, src).unwrap_err().join("\n");
            assert!(e.starts_with(expected), "{src:?}: {e}");
        }
    }

    #[test]
    fn the_file_sits_beside_the_intents() {
        assert_eq!(file_of(Path::new("intents")), Path::new("canned.toml"));
        assert_eq!(
            file_of(Path::new("/etc/frontdesk/intents")),
            Path::new("/etc/frontdesk/canned.toml")
        );
        assert_eq!(
            file_of(Path::new("/etc/frontdesk/intents/")),
            Path::new("/etc/frontdesk/canned.toml")
        );
    }
}
