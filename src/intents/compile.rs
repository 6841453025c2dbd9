//! Raw intent files → the validated `IntentSet` the classifier runs on.
//! Every problem in every file is collected (not just the first) so that
//! `frontdesk check` lists them all at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use toml::Spanned;

use super::error::{ErrorKind, LoadError, LoadErrors};
use super::file::{RawAnswer, RawCalibration, RawIntent, RawOutOfScope};
use crate::util::hash::Fnv;
use crate::util::normalize::normalize;

/// The file, beside the intents, holding known out-of-scope examples.
pub const OUT_OF_SCOPE_FILE: &str = "_out_of_scope.toml";
/// The file, beside the intents, holding measured thresholds.
pub const CALIBRATION_FILE: &str = "_calibration.toml";

/// See `Thresholds::clarify_coverage`.
pub const OPEN_WORLD_CLARIFY_COVERAGE: f32 = 0.6;

/// Where a value was written, for messages that point back at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// What the bot does when an intent wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reply with the answer and stay with the bot.
    Answer,
    /// Reply, then hand the conversation to a person.
    Handoff,
    /// Reply, then close the conversation.
    End,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Answer => "answer",
            Action::Handoff => "handoff",
            Action::End => "end",
        }
    }
}

/// A compiled regex with the text it came from and where it was written.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: Regex,
    pub location: Location,
}

/// A value the answer needs, found in the message by `pattern` or asked for.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    /// Runs on the raw message (order numbers, emails keep their shape).
    pub pattern: Regex,
    pub prompt: String,
}

/// A keyword after normalisation, with where the admin wrote it.
#[derive(Debug, Clone)]
pub struct Keyword {
    pub phrase: String,
    pub location: Location,
}

/// A test message that must classify to its intent.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub text: String,
    pub location: Location,
}

/// One validated intent.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The file stem; stable, used in logs, evals and the API.
    pub id: String,
    /// The file it came from.
    pub path: PathBuf,
    pub description: String,
    pub keywords: Vec<Keyword>,
    pub patterns: Vec<Pattern>,
    pub examples: Vec<String>,
    /// One or more answers, rotated by the conversation.
    pub answers: Vec<String>,
    pub quick_replies: Vec<String>,
    pub action: Action,
    pub slots: Vec<Slot>,
    pub tests: Vec<TestCase>,
    /// The admin's own answer threshold for this intent, if any.
    pub threshold: Option<f32>,
    /// The backend call that makes the answer (`[call]`), if any; the
    /// `answer` is then what the bot says while actions are off.
    pub call: Option<std::sync::Arc<crate::action::Call>>,
    /// Its place in the menu of main topics (1 = first), if the admin
    /// gave one (`menu = 1`).
    pub menu: Option<u8>,
}

/// Thresholds of the decision policy, measured or default.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// At or above: answer.
    pub answer: f32,
    /// At or above (and below `answer`): ask "Did you mean …?"; below: fallback.
    pub clarify: f32,
    /// The runner-up is offered too when it is within this of the top score.
    pub margin: f32,
    /// Below the answer threshold, ask "Did you mean …?" only when at least
    /// this share of the message's words is known; else fall back. It is
    /// `OPEN_WORLD_CLARIFY_COVERAGE` for an uncalibrated set with out-of-scope examples
    /// (its admin expects off-topic questions, and a guess at a message the
    /// bot mostly does not understand, "do you ship to mars", helps nobody)
    /// and 0 for a closed-world set, where every message is assumed to mean
    /// one of the intents and a guess beats a refusal (measured: on
    /// BANKING77 10-shot a floor of 0.6 costs 3.5 points of accuracy). A
    /// calibration replaces it (off unless the file sets it).
    pub clarify_coverage: f32,
    /// Per-intent answer thresholds from calibration.
    pub per_intent: BTreeMap<String, f32>,
    /// Where these numbers come from, for traces and `check`.
    pub source: String,
}

impl Thresholds {
    /// The thresholds of a set with no `_calibration.toml`. The scores are
    /// probabilities over `n_intents` classes, so a fixed bar would mean
    /// different things for 20 intents and for 150: the fallback boundary is
    /// three times what a uniform guess would score (`3 / n`, within
    /// [0.03, 0.3]), and the bot answers outright from 0.5.
    pub fn uncalibrated(n_intents: usize) -> Thresholds {
        let clarify = (3.0 / n_intents.max(1) as f32).clamp(0.03, 0.3);
        Thresholds {
            answer: 0.5,
            clarify,
            margin: 0.15,
            clarify_coverage: 0.0,
            per_intent: BTreeMap::new(),
            source: format!(
                "defaults for {n_intents} intents (answer 0.50, clarify {clarify:.2}; no _calibration.toml)"
            ),
        }
    }
}

/// Everything loaded from one intent directory, validated.
#[derive(Debug, Clone)]
pub struct IntentSet {
    /// The directory it was loaded from.
    pub dir: PathBuf,
    /// Sorted by id, so that loads are deterministic.
    pub intents: Vec<Intent>,
    /// Messages known to be out of scope (`_out_of_scope.toml`).
    pub out_of_scope: Vec<String>,
    pub thresholds: Thresholds,
    /// Hash of the intent files; a calibration made on other files is stale.
    pub fingerprint: String,
    /// True when `_calibration.toml` was measured on other intent files.
    pub calibration_stale: bool,
}

impl Intent {
    /// How the intent is named to visitors ("Did you mean …?"): its first
    /// example, written in their words; the description is for admins.
    pub fn label(&self) -> &str {
        self.examples
            .first()
            .map(String::as_str)
            .unwrap_or(&self.description)
    }
}

impl IntentSet {
    pub fn get(&self, id: &str) -> Option<&Intent> {
        self.intents
            .binary_search_by(|i| i.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.intents[i])
    }

    /// The answer threshold that applies to `intent`.
    pub fn answer_threshold(&self, intent: &Intent) -> f32 {
        intent
            .threshold
            .or_else(|| self.thresholds.per_intent.get(&intent.id).copied())
            .unwrap_or(self.thresholds.answer)
    }
}

/// Is `id` a valid intent or slot id?
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Loads and validates every intent in `dir`. Inline tests are not run
/// here (they need a classifier and the decision policy): see
/// `conversation::Decide::load`.
pub fn load_dir(dir: &Path) -> Result<IntentSet, LoadErrors> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Err(LoadErrors(vec![LoadError {
                path: dir.to_path_buf(),
                line: 1,
                col: 1,
                kind: ErrorKind::Io(e.to_string()),
            }]))
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    let sources = files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).map_err(|e| e.to_string());
            (p, bytes)
        })
        .collect();
    load_sources(dir, sources)
}

/// `load_dir` on files already read (or given in memory, as the replay of
/// an edit that is not saved): each `(path, bytes or the read error)`, the
/// paths in `dir` and sorted by name. Nothing is read from disk.
pub fn load_sources(
    dir: &Path,
    files: Vec<(PathBuf, Result<Vec<u8>, String>)>,
) -> Result<IntentSet, LoadErrors> {
    let mut errors = Vec::new();
    let mut intents = Vec::new();
    let mut out_of_scope = Vec::new();
    let mut calibration = None;
    let mut hasher = Fnv::new();
    for (path, bytes) in files {
        let path = &path;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                errors.push(LoadError {
                    path: path.clone(),
                    line: 1,
                    col: 1,
                    kind: ErrorKind::Io(e),
                });
                continue;
            }
        };
        let source = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                // Point at the first bad byte: the valid prefix gives its place.
                let at = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
                errors.push(LoadError::at(
                    path,
                    &prefix,
                    at,
                    ErrorKind::Io("not UTF-8 text (save the file as UTF-8)".into()),
                ));
                continue;
            }
        };
        if name == CALIBRATION_FILE {
            calibration = parse::<RawCalibration>(path, &source, &mut errors)
                .map(|raw| (raw, path.clone(), source));
            continue;
        }
        hasher.write(name.as_bytes());
        hasher.write(source.as_bytes());
        if name == OUT_OF_SCOPE_FILE {
            if let Some(raw) = parse::<RawOutOfScope>(path, &source, &mut errors) {
                let _ = raw.description;
                for ex in raw.examples {
                    let text = non_empty(path, &source, &ex, "examples", &mut errors);
                    out_of_scope.extend(text);
                }
            }
            continue;
        }
        let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !valid_id(id) {
            errors.push(LoadError::at(
                path,
                &source,
                0,
                ErrorKind::InvalidId(id.to_string()),
            ));
            continue;
        }
        // Unknown fields are reported one by one and blanked out, so that
        // they do not hide the other problems of the file.
        let source = blank_unknown_fields(path, &source, &mut errors);
        if let Some(raw) = parse::<RawIntent>(path, &source, &mut errors) {
            if let Some(intent) = compile_intent(id, path, &source, raw, &mut errors) {
                intents.push(intent);
            }
        }
    }
    if intents.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            path: dir.to_path_buf(),
            line: 1,
            col: 1,
            kind: ErrorKind::NoIntents,
        });
    }
    check_keywords_unique(&intents, &mut errors);
    intents.sort_by(|a, b| a.id.cmp(&b.id));
    let fingerprint = format!("{:016x}", hasher.finish());

    let mut thresholds = Thresholds::uncalibrated(intents.len());
    let mut calibration_stale = false;
    let calibrated = calibration.is_some();
    if let Some((raw, path, source)) = calibration {
        for name in raw.intents.keys() {
            if !intents.iter().any(|i| &i.id == name) {
                let offset = source.find(&format!("{name} =")).unwrap_or(0);
                errors.push(LoadError::at(
                    &path,
                    &source,
                    offset,
                    ErrorKind::CalibrationUnknownIntent(name.clone()),
                ));
            }
        }
        let at = |key: &str| source.find(&format!("{key} =")).unwrap_or(0);
        let mut check = |key: &str, v: f64, zero_ok: bool| {
            let ok = if zero_ok {
                (0.0..=1.0).contains(&v)
            } else {
                v > 0.0 && v <= 1.0
            };
            if !ok {
                errors.push(LoadError::at(
                    &path,
                    &source,
                    at(key),
                    ErrorKind::BadThreshold(v),
                ));
            }
        };
        check("answer", raw.answer, false);
        check("clarify", raw.clarify, false);
        check("margin", raw.margin.unwrap_or(0.15), true);
        check(
            "clarify_coverage",
            raw.clarify_coverage.unwrap_or(0.0),
            true,
        );
        for (name, v) in &raw.intents {
            check(name, *v, false);
        }
        if raw.clarify > raw.answer {
            errors.push(LoadError::at(
                &path,
                &source,
                at("clarify"),
                ErrorKind::ClarifyAboveAnswer {
                    clarify: raw.clarify,
                    answer: raw.answer,
                },
            ));
        }
        calibration_stale = !raw.fingerprint.is_empty() && raw.fingerprint != fingerprint;
        thresholds = Thresholds {
            answer: raw.answer as f32,
            clarify: raw.clarify as f32,
            margin: raw.margin.unwrap_or(0.15) as f32,
            clarify_coverage: raw.clarify_coverage.unwrap_or(0.0) as f32,
            per_intent: raw
                .intents
                .into_iter()
                .map(|(k, v)| (k, v as f32))
                .collect(),
            source: format!("{} ({})", path.display(), raw.measured_on),
        };
    }

    if !out_of_scope.is_empty() && !calibrated {
        thresholds.clarify_coverage = OPEN_WORLD_CLARIFY_COVERAGE;
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
        return Err(LoadErrors(errors));
    }
    Ok(IntentSet {
        dir: dir.to_path_buf(),
        intents,
        out_of_scope,
        thresholds,
        fingerprint,
        calibration_stale,
    })
}

/// The top-level fields an intent file may have.
const INTENT_FIELDS: &[&str] = &[
    "description",
    "keywords",
    "patterns",
    "examples",
    "answer",
    "quick_replies",
    "action",
    "slots",
    "tests",
    "threshold",
    "call",
    "menu",
];

/// Reports each unknown top-level field of an intent file and returns the
/// source with those fields replaced by spaces (newlines kept), so every
/// other offset, and so every other line:col, stays where it was. A file
/// that is not valid TOML is returned as it is, for `parse` to report.
fn blank_unknown_fields(path: &Path, source: &str, errors: &mut Vec<LoadError>) -> String {
    type Fields = std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>;
    let Ok(fields) = toml::from_str::<Fields>(source) else {
        return source.to_string();
    };
    let mut out = source.as_bytes().to_vec();
    for (key, value) in &fields {
        if INTENT_FIELDS.contains(&key.get_ref().as_str()) {
            continue;
        }
        errors.push(err(
            path,
            source,
            key.span(),
            ErrorKind::Toml(format!(
                "unknown field `{}`, expected one of {}",
                key.get_ref(),
                INTENT_FIELDS
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ));
        let end = value.span().end.min(out.len());
        for b in &mut out[key.span().start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Only ASCII bytes were replaced, by ASCII spaces: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| source.to_string())
}

/// Parses TOML into `T`, turning syntax and type errors into located ones.
fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    source: &str,
    errors: &mut Vec<LoadError>,
) -> Option<T> {
    match toml::from_str::<T>(source) {
        Ok(v) => Some(v),
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let message = match e.message().trim() {
                // The toml crate gives no message for some bytes (a lone
                // `\r` at a line's start, as in old Mac line ends): name
                // what is there rather than print `path:1:1: ` and nothing.
                "" => match source.get(offset..).and_then(|s| s.chars().next()) {
                    Some(c) => format!("invalid TOML: unexpected {c:?}"),
                    None => "invalid TOML: unexpected end of file".to_string(),
                },
                m => m.to_string(),
            };
            errors.push(LoadError::at(
                path,
                source,
                offset,
                ErrorKind::Toml(message),
            ));
            None
        }
    }
}

fn err(path: &Path, source: &str, span: std::ops::Range<usize>, kind: ErrorKind) -> LoadError {
    LoadError::at(path, source, span.start, kind)
}

fn location(path: &Path, source: &str, offset: usize) -> Location {
    let (line, col) = super::error::line_col(source, offset);
    Location {
        path: path.to_path_buf(),
        line,
        col,
    }
}

fn non_empty(
    path: &Path,
    source: &str,
    value: &Spanned<String>,
    field: &str,
    errors: &mut Vec<LoadError>,
) -> Option<String> {
    if value.get_ref().trim().is_empty() {
        errors.push(err(
            path,
            source,
            value.span(),
            ErrorKind::Empty {
                field: field.to_string(),
            },
        ));
        None
    } else {
        Some(value.get_ref().trim().to_string())
    }
}

fn compile_intent(
    id: &str,
    path: &Path,
    source: &str,
    raw: RawIntent,
    errors: &mut Vec<LoadError>,
) -> Option<Intent> {
    let before = errors.len();
    let at_start = |kind| LoadError::at(path, source, 0, kind);

    let description = match &raw.description {
        Some(d) => non_empty(path, source, d, "description", errors).unwrap_or_default(),
        None => {
            errors.push(at_start(ErrorKind::Missing("description")));
            String::new()
        }
    };

    let mut keywords: Vec<Keyword> = Vec::new();
    for (i, k) in raw.keywords.iter().enumerate() {
        let phrase = normalize(k.get_ref());
        if phrase.is_empty() {
            errors.push(err(
                path,
                source,
                k.span(),
                ErrorKind::Empty {
                    field: format!("keywords[{i}]"),
                },
            ));
        } else if !keywords.iter().any(|kw| kw.phrase == phrase) {
            keywords.push(Keyword {
                phrase,
                location: location(path, source, k.span().start),
            });
        }
    }

    let mut patterns = Vec::new();
    for (i, p) in raw.patterns.iter().enumerate() {
        if let Some(c) = unmatchable_char(p.get_ref()) {
            errors.push(err(
                path,
                source,
                p.span(),
                ErrorKind::PatternNeverMatches {
                    field: format!("patterns[{i}]"),
                    found: c,
                },
            ));
            continue;
        }
        match Regex::new(p.get_ref()) {
            Ok(regex) => patterns.push(Pattern {
                source: p.get_ref().clone(),
                regex,
                location: location(path, source, p.span().start),
            }),
            Err(e) => errors.push(err(
                path,
                source,
                p.span(),
                ErrorKind::BadRegex {
                    field: format!("patterns[{i}]"),
                    message: one_line(&e.to_string()),
                },
            )),
        }
    }

    let examples: Vec<String> = raw
        .examples
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let text = non_empty(path, source, e, &format!("examples[{i}]"), errors)?;
            if normalize(&text).is_empty() {
                // Like a keyword: nothing would be left to learn from.
                errors.push(err(
                    path,
                    source,
                    e.span(),
                    ErrorKind::Empty {
                        field: format!("examples[{i}] (after normalisation)"),
                    },
                ));
                return None;
            }
            Some(text)
        })
        .collect();

    if raw.keywords.is_empty() && raw.patterns.is_empty() && raw.examples.is_empty() {
        errors.push(at_start(ErrorKind::NothingToMatch));
    }

    let mut slots: Vec<Slot> = Vec::new();
    for (i, s) in raw.slots.iter().enumerate() {
        let s = s.get_ref();
        let name = s.name.get_ref();
        if !valid_id(name) || name == "name" {
            errors.push(err(
                path,
                source,
                s.name.span(),
                ErrorKind::BadSlotName(name.clone()),
            ));
            continue;
        }
        if slots.iter().any(|x| &x.name == name) {
            errors.push(err(
                path,
                source,
                s.name.span(),
                ErrorKind::DuplicateSlot(name.clone()),
            ));
            continue;
        }
        let prompt = non_empty(
            path,
            source,
            &s.prompt,
            &format!("slots[{i}].prompt"),
            errors,
        );
        match Regex::new(s.pattern.get_ref()) {
            Ok(pattern) => slots.push(Slot {
                name: name.clone(),
                pattern,
                prompt: prompt.unwrap_or_default(),
            }),
            Err(e) => errors.push(err(
                path,
                source,
                s.pattern.span(),
                ErrorKind::BadRegex {
                    field: format!("slots[{i}].pattern"),
                    message: one_line(&e.to_string()),
                },
            )),
        }
    }

    // A prompt is shown as written: only `{name}` may be filled in it.
    for (i, s) in raw.slots.iter().enumerate() {
        let prompt = &s.get_ref().prompt;
        match placeholders(prompt.get_ref()) {
            None => errors.push(err(
                path,
                source,
                prompt.span(),
                ErrorKind::UnclosedPlaceholder,
            )),
            Some(names) => {
                for n in names.into_iter().filter(|n| *n != "name") {
                    errors.push(err(
                        path,
                        source,
                        prompt.span(),
                        ErrorKind::PromptPlaceholder {
                            field: format!("slots[{i}].prompt"),
                            placeholder: n.to_string(),
                        },
                    ));
                }
            }
        }
    }

    let answers = match &raw.answer {
        None => {
            errors.push(at_start(ErrorKind::Missing("answer")));
            Vec::new()
        }
        Some(a) => {
            let list = match a.get_ref() {
                RawAnswer::One(s) => vec![s.clone()],
                RawAnswer::Many(v) => v.clone(),
            };
            if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
                errors.push(err(
                    path,
                    source,
                    a.span(),
                    ErrorKind::Empty {
                        field: "answer".into(),
                    },
                ));
            }
            for text in &list {
                match placeholders(text) {
                    None => {
                        errors.push(err(path, source, a.span(), ErrorKind::UnclosedPlaceholder))
                    }
                    Some(names) => {
                        for name in names {
                            if name != "name" && !slots.iter().any(|s| s.name == name) {
                                errors.push(err(
                                    path,
                                    source,
                                    a.span(),
                                    ErrorKind::UnknownPlaceholder(name.to_string()),
                                ));
                            }
                        }
                    }
                }
            }
            list.into_iter().map(|s| s.trim().to_string()).collect()
        }
    };

    let action = match &raw.action {
        None => Action::Answer,
        Some(a) => match a.get_ref().as_str() {
            "answer" => Action::Answer,
            "handoff" => Action::Handoff,
            "end" => Action::End,
            other => {
                errors.push(err(
                    path,
                    source,
                    a.span(),
                    ErrorKind::BadAction(other.to_string()),
                ));
                Action::Answer
            }
        },
    };

    let threshold = match &raw.threshold {
        None => None,
        Some(t) => {
            let v = *t.get_ref();
            if !(v > 0.0 && v <= 1.0) {
                errors.push(err(path, source, t.span(), ErrorKind::BadThreshold(v)));
            }
            Some(v as f32)
        }
    };

    let menu = raw.menu.as_ref().and_then(|m| {
        let v = *m.get_ref();
        if !(1..=99).contains(&v) {
            errors.push(err(path, source, m.span(), ErrorKind::BadMenuPlace(v)));
            return None;
        }
        if action != Action::Answer {
            errors.push(err(
                path,
                source,
                m.span(),
                ErrorKind::MenuNotAnAnswer(action.as_str().to_string()),
            ));
            return None;
        }
        Some(v as u8)
    });

    let quick_replies = raw
        .quick_replies
        .iter()
        .enumerate()
        .filter_map(|(i, q)| non_empty(path, source, q, &format!("quick_replies[{i}]"), errors))
        .collect();

    let tests = raw
        .tests
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            non_empty(path, source, t, &format!("tests[{i}]"), errors).map(|text| TestCase {
                text,
                location: location(path, source, t.span().start),
            })
        })
        .collect();

    let call = raw.call.as_ref().and_then(|c| {
        let names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
        match crate::action::compile(c.get_ref(), id, &names, source) {
            Ok(call) => Some(std::sync::Arc::new(call)),
            Err(problems) => {
                for p in problems {
                    let span = if p.span.is_empty() && p.span.start == 0 {
                        c.span()
                    } else {
                        p.span
                    };
                    errors.push(err(path, source, span, ErrorKind::Action(p.message)));
                }
                None
            }
        }
    });

    if errors.len() > before {
        return None;
    }
    Some(Intent {
        id: id.to_string(),
        path: path.to_path_buf(),
        description,
        keywords,
        patterns,
        examples,
        answers,
        quick_replies,
        action,
        slots,
        tests,
        threshold,
        call,
        menu,
    })
}

/// A literal character of a pattern that normalised text never contains
/// (an upper-case letter, unless the pattern is case-insensitive, or an
/// accented one): such a pattern can never match.
fn unmatchable_char(pattern: &str) -> Option<char> {
    let insensitive = pattern.contains("(?i");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // An escape: `\D`, `\pL`, `\p{Lu}`, `\x41`, `\u00E9` are not
            // literals, nor is what they name.
            let width = match chars.next() {
                Some('p' | 'P') => 1,
                Some('x') => 2,
                Some('u') => 4,
                Some('U') => 8,
                _ => 0,
            };
            let rest = chars.as_str();
            if width > 0 && rest.starts_with('{') {
                let close = rest.find('}').map_or(rest.len(), |i| i + 1);
                chars = rest[close..].chars();
            } else {
                for _ in 0..width {
                    chars.next();
                }
            }
            continue;
        }
        if c == '(' {
            // A group name, `(?P<Name>` or `(?<Name>`, is not a literal.
            let rest = chars.as_str();
            for opener in ["?P<", "?<"] {
                if let Some(after) = rest.strip_prefix(opener) {
                    let close = after.find('>').map_or(after.len(), |i| i + 1);
                    chars = after[close..].chars();
                    break;
                }
            }
            continue;
        }
        if c.is_alphabetic() {
            let folded = normalize(&c.to_string());
            let same =
                folded == c.to_string() || (insensitive && folded == c.to_lowercase().to_string());
            if !same {
                return Some(c);
            }
        }
    }
    None
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `{placeholder}` names in an answer; `None` on an unclosed brace.
pub fn placeholders(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        out.push(after[..end].trim());
        rest = &after[end + 1..];
    }
    Some(out)
}

/// Fills `{placeholder}`s from `value`; an unknown one is left as written.
pub fn render<'a>(text: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = after[..end].trim();
                match value(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_keywords_unique(intents: &[Intent], errors: &mut Vec<LoadError>) {
    let mut owner: HashMap<&str, (&str, &Location)> = HashMap::new();
    for intent in intents {
        let mut seen = HashSet::new();
        for k in &intent.keywords {
            if !seen.insert(k.phrase.as_str()) {
                continue;
            }
            match owner.get(k.phrase.as_str()) {
                Some((other, loc)) => errors.push(LoadError {
                    path: k.location.path.clone(),
                    line: k.location.line,
                    col: k.location.col,
                    kind: ErrorKind::DuplicateKeyword {
                        keyword: k.phrase.clone(),
                        other: format!("intent `{other}` at {loc}"),
                    },
                }),
                None => {
                    owner.insert(&k.phrase, (&intent.id, &k.location));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_and_keeps_unknown() {
        let v = |k: &str| match k {
            "name" => Some("Ada"),
            _ => None,
        };
        assert_eq!(render("Hi {name}!", v), "Hi Ada!");
        assert_eq!(render("Order {order_id}.", v), "Order {order_id}.");
        assert_eq!(render("no braces", v), "no braces");
        assert_eq!(render("open { brace", v), "open { brace");
    }

    /// The bug this pins: a file with a lone `\r` (old Mac line ends) was
    /// reported as `path:1:1: ` with no message, because the toml crate
    /// has none for it. Found by `tests/fuzz` (intents target).
    #[test]
    fn toml_error_without_a_message_still_says_what() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "\rdescription = \"x\"\r").unwrap();
        let errors = load_dir(dir.path()).unwrap_err();
        let want = format!(
            "{}:1:1: invalid TOML: unexpected '\\r'",
            dir.path().join("a.toml").display()
        );
        assert_eq!(errors.to_string(), want);
    }

    #[test]
    fn ids() {
        assert!(valid_id("shipping_cost"));
        assert!(valid_id("a1"));
        assert!(!valid_id("1a"));
        assert!(!valid_id("Shipping"));
        assert!(!valid_id("ship-cost"));
        assert!(!valid_id(""));
    }
}
