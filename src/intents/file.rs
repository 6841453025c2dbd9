//! The raw form of an intent file: exactly what the admin wrote, with the
//! position of every value kept (`Spanned`) so that validation can point at
//! `path:line:col`. Nothing here is checked beyond TOML types and unknown
//! fields; `compile.rs` turns it into the validated `Intent`.

use serde::Deserialize;
use toml::Spanned;

/// One `intents/<id>.toml` file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntent {
    /// What the intent is for, shown to admins and agents.
    pub description: Option<Spanned<String>>,
    /// Phrases matched whole-word after normalisation; a hit is strong evidence.
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    /// Regexes over the normalised text; named groups become slot values.
    #[serde(default)]
    pub patterns: Vec<Spanned<String>>,
    /// Messages that mean this intent; they train the lexical layer.
    #[serde(default)]
    pub examples: Vec<Spanned<String>>,
    /// The reply, or several rotated between.
    pub answer: Option<Spanned<RawAnswer>>,
    /// Buttons offered under the answer.
    #[serde(default)]
    pub quick_replies: Vec<Spanned<String>>,
    /// What the bot does when this intent wins.
    pub action: Option<Spanned<String>>,
    /// Values the answer needs, each with a prompt that asks for it.
    #[serde(default)]
    pub slots: Vec<Spanned<RawSlot>>,
    /// Messages that must classify to this intent (`frontdesk test`, load).
    #[serde(default)]
    pub tests: Vec<Spanned<String>>,
    /// Answer threshold for this intent alone, overriding the global one.
    pub threshold: Option<Spanned<f64>>,
    /// An HTTP action whose reply makes the answer (`crate::action`).
    pub call: Option<Spanned<crate::action::RawCall>>,
    /// This intent's place (1 = first) in the menu of main topics a short,
    /// vague message gets (`conversation::decide::menu`).
    pub menu: Option<Spanned<i64>>,
}

/// `answer = "…"` or `answer = ["…", "…"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAnswer {
    One(String),
    Many(Vec<String>),
}

/// One `[[slots]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlot {
    pub name: Spanned<String>,
    pub pattern: Spanned<String>,
    pub prompt: Spanned<String>,
}

/// `_out_of_scope.toml`: messages the bot must not answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutOfScope {
    pub description: Option<String>,
    #[serde(default)]
    pub examples: Vec<Spanned<String>>,
}

/// `_calibration.toml`: thresholds written by `frontdesk calibrate`.
#[derive(Debug, Deserialize, serde::Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawCalibration {
    /// Where and how the thresholds were measured, for the admin's eyes.
    #[serde(default)]
    pub measured_on: String,
    /// Fingerprint of the intent files they were measured with.
    #[serde(default)]
    pub fingerprint: String,
    pub answer: f64,
    pub clarify: f64,
    #[serde(default)]
    pub margin: Option<f64>,
    /// Coverage a clarify needs (see `Thresholds::clarify_coverage`); off
    /// unless given, since calibration measures the trade-off by score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clarify_coverage: Option<f64>,
    /// Per-intent answer thresholds where the data supported one.
    #[serde(default)]
    pub intents: std::collections::BTreeMap<String, f64>,
}
