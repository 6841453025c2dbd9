//! Load errors: every problem in an intent directory, each pointing at the
//! file, line and column the admin has to edit.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found while loading an intent directory.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The file to edit.
    pub path: PathBuf,
    /// 1-based line of the offending value (1 when the whole file is meant).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl LoadError {
    /// An error at byte offset `offset` of `source` (the file's text).
    pub fn at(path: &Path, source: &str, offset: usize, kind: ErrorKind) -> LoadError {
        let (line, col) = line_col(source, offset);
        LoadError {
            path: path.to_path_buf(),
            line,
            col,
            kind,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.kind
        )
    }
}

impl std::error::Error for LoadError {}

/// The cases an admin fixes differently. Messages are lowercase and name the
/// bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    /// The semantic model failed on this set's examples.
    #[error("semantic model: {0}")]
    Model(String),
    #[error("{0}")]
    Toml(String),
    #[error("invalid intent id `{0}`: use lowercase letters, digits and `_`, starting with a letter (the file stem is the id)")]
    InvalidId(String),
    #[error("bad regex in `{field}`: {message}")]
    BadRegex { field: String, message: String },
    #[error("intent has nothing to match on: give it `keywords`, `patterns` or `examples`")]
    NothingToMatch,
    #[error("keyword `{keyword}` is also claimed by {other}")]
    DuplicateKeyword { keyword: String, other: String },
    #[error("answer placeholder `{{{0}}}` is provided by no slot (declare it in [[slots]], or use {{name}})")]
    UnknownPlaceholder(String),
    #[error("unclosed `{{` in answer")]
    UnclosedPlaceholder,
    #[error("`{field}` must not be empty")]
    Empty { field: String },
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("unknown action `{0}`: expected one of answer, handoff, end")]
    BadAction(String),
    #[error("threshold {0} is outside (0, 1]")]
    BadThreshold(f64),
    #[error("menu {0} is not a place in the menu: use 1 (first) to 99")]
    BadMenuPlace(i64),
    #[error("`menu` is for intents that answer; this one's action is `{0}`")]
    MenuNotAnAnswer(String),
    #[error(
        "invalid slot name `{0}`: use lowercase letters, digits and `_`, starting with a letter (not `name`: that is the visitor's)"
    )]
    BadSlotName(String),
    #[error("`{field}` can never match: it contains `{found}`, but patterns run on normalised text (lowercase, accents and punctuation removed)")]
    PatternNeverMatches { field: String, found: char },
    #[error("`{field}` uses `{{{placeholder}}}`, but a prompt can only use {{name}}")]
    PromptPlaceholder { field: String, placeholder: String },
    #[error("clarify threshold {clarify} is above the answer threshold {answer}")]
    ClarifyAboveAnswer { clarify: f64, answer: f64 },
    #[error("slot `{0}` is declared twice")]
    DuplicateSlot(String),
    #[error("test {text:?} classifies as {got}, not this intent")]
    TestFailed { text: String, got: String },
    #[error("calibration names unknown intent `{0}`")]
    CalibrationUnknownIntent(String),
    #[error("no intent files (*.toml) in this directory")]
    NoIntents,
    /// A problem in the intent's `[call]` (`crate::action`).
    #[error("[call]: {0}")]
    Action(String),
}

/// Converts a byte offset into a 1-based (line, column in characters).
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    // Step back to a char boundary so slicing never panics on odd offsets.
    let mut offset = offset;
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Every error found in one load, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_chars_not_bytes() {
        let s = "a = 1\nbé = 'x'\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        // 'é' is two bytes: the quote after "bé = " is the 6th char.
        assert_eq!(line_col(s, s.find('\'').unwrap()), (2, 6));
        assert_eq!(line_col(s, 10_000), (3, 1));
    }
}
