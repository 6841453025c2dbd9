//! Labelled data: import a `text,intent` CSV as intent files, evaluate a
//! classifier on one, sweep thresholds, and calibrate them by
//! cross-validation. Used by the CLI and the benches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::classify::Classifier;
use crate::conversation::{Decide, Decision};
use crate::intents::{self, file::RawCalibration, IntentSet, CALIBRATION_FILE};
use crate::util::normalize::normalize;

/// The label of rows the bot must not answer.
pub const OOS: &str = "oos";

/// Errors reading or writing labelled data.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: no rows")]
    Empty { path: PathBuf },
    #[error(
        "{path}: exists; import replaces only with --force (it would lose what is written there)"
    )]
    WouldOverwrite { path: PathBuf },
    #[error("labels {a:?} and {b:?} would both become intent `{id}`; rename one")]
    LabelClash { a: String, b: String, id: String },
    #[error("{0}")]
    Invalid(String),
}

/// One labelled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub text: String,
    pub intent: String,
}

/// Reads a `text,intent` CSV with a header (`label` is accepted for
/// `intent`). Bad rows are errors with their line, never skipped silently.
pub fn read_csv(path: &Path) -> Result<Vec<Row>, EvalError> {
    let io = |e: std::io::Error| EvalError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let csv_err = |e: csv::Error| EvalError::Csv {
        path: path.to_path_buf(),
        line: e.position().map(|p| p.line()).unwrap_or(1),
        message: e.to_string(),
    };
    let headers = reader.headers().map_err(csv_err)?.clone();
    let col = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let (Some(text_col), Some(intent_col)) = (col(&["text"]), col(&["intent", "label", "gold"]))
    else {
        return Err(EvalError::Csv {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "the header must name a `text` and an `intent` column; it is `{}`",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        });
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let text = record.get(text_col).unwrap_or("").trim().to_string();
        let intent = record.get(intent_col).unwrap_or("").trim().to_string();
        if text.is_empty() || intent.is_empty() {
            return Err(EvalError::Csv {
                path: path.to_path_buf(),
                line,
                message: "empty `text` or `intent`".to_string(),
            });
        }
        rows.push(Row { text, intent });
    }
    if rows.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// Turns a label into a valid intent id (`Card Arrival` → `card_arrival`).
pub fn label_to_id(label: &str) -> String {
    let mut id: String = label
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id.insert_str(0, "i_");
    }
    id
}

/// An imported intent file, as the `toml` crate writes it (it quotes
/// every string so that it loads back the same).
#[derive(serde::Serialize)]
struct ImportedIntent<'a> {
    description: String,
    answer: String,
    examples: &'a [&'a str],
}

/// The imported `_out_of_scope.toml`.
#[derive(serde::Serialize)]
struct ImportedOutOfScope<'a> {
    examples: &'a [&'a str],
}

/// `text` fit for one TOML comment line: control characters (line breaks
/// above all, which would end the comment) escaped.
fn comment_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub intents: usize,
    pub examples: usize,
    pub out_of_scope: usize,
}

/// Writes one intent file per label into `out` (examples only, a placeholder
/// answer) and the `oos` rows into `_out_of_scope.toml`. Existing files of
/// the same names are replaced; others are left alone.
pub fn import(
    rows: &[Row],
    source: &Path,
    out: &Path,
    force: bool,
) -> Result<ImportReport, EvalError> {
    let io = |p: &Path, e: std::io::Error| EvalError::Io {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    if out.exists() && !out.is_dir() {
        return Err(EvalError::Invalid(format!(
            "{}: is a file, not a directory",
            out.display()
        )));
    }
    let mut label_of: HashMap<String, &str> = HashMap::new();
    for r in rows {
        let id = if r.intent == OOS {
            OOS.to_string()
        } else {
            label_to_id(&r.intent)
        };
        match label_of.get(&id) {
            Some(a) if *a != r.intent => {
                return Err(EvalError::LabelClash {
                    a: a.to_string(),
                    b: r.intent.clone(),
                    id,
                })
            }
            _ => {
                label_of.insert(id, &r.intent);
            }
        }
    }
    if !force {
        for id in label_of.keys() {
            let path = if id == OOS {
                out.join(intents::OUT_OF_SCOPE_FILE)
            } else {
                out.join(format!("{id}.toml"))
            };
            if path.exists() {
                return Err(EvalError::WouldOverwrite { path });
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut by_intent: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for r in rows {
        let id = if r.intent == OOS {
            OOS.to_string()
        } else {
            label_to_id(&r.intent)
        };
        // Exact duplicates add nothing but weight.
        if seen.insert((id.clone(), r.text.clone())) {
            by_intent.entry(id).or_default().push(&r.text);
        }
    }
    let mut report = ImportReport {
        intents: 0,
        examples: 0,
        out_of_scope: 0,
    };
    let toml_err = |p: &Path, e: toml::ser::Error| EvalError::Io {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    let source = comment_safe(&source.display().to_string());
    for (id, examples) in &by_intent {
        let (path, header, body) = if id == OOS {
            report.out_of_scope += examples.len();
            let header = format!(
                "# Known out-of-scope messages, imported from {source}.\n\
                 # The bot learns from them what it must not answer.\n"
            );
            let body = toml::to_string_pretty(&ImportedOutOfScope { examples });
            (out.join(intents::OUT_OF_SCOPE_FILE), header, body)
        } else {
            report.intents += 1;
            report.examples += examples.len();
            let header = format!("# Imported from {source}.\n");
            let body = toml::to_string_pretty(&ImportedIntent {
                description: format!("Imported label `{id}`"),
                answer: format!("[Write the answer for {id} here.]"),
                examples,
            });
            (out.join(format!("{id}.toml")), header, body)
        };
        let body = body.map_err(|e| toml_err(&path, e))?;
        std::fs::write(&path, header + &body).map_err(|e| io(&path, e))?;
    }
    Ok(report)
}

/// Labels in `rows` that name no intent of `set` (and are not `oos`), with
/// their counts: such rows can never be right, which the user must know.
pub fn unknown_labels(set: &IntentSet, rows: &[Row]) -> Vec<(String, usize)> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        let id = gold_id(&r.intent);
        if id != OOS && set.get(&id).is_none() {
            *out.entry(r.intent.clone()).or_default() += 1;
        }
    }
    out.into_iter().collect()
}

/// One evaluated row, as written to `--predictions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub text: String,
    pub gold: String,
    /// The top intent, or `oos` when the decision is fallback.
    pub predicted: String,
    pub decision: &'static str,
    pub confidence: f32,
    pub latency_us: u64,
    /// For sweeps: the top intent whatever the decision.
    pub top: String,
    /// For sweeps: the out-of-scope class beat the top intent.
    pub oos_wins: bool,
}

/// Classifies each row as the first message of a conversation, one at a
/// time as a live message is: with the semantic layer, each row's latency
/// includes its own forward pass (no batched embedding beforehand, which
/// made the column measure cache lookups).
pub fn evaluate(classifier: &Classifier, rows: &[Row]) -> Vec<Prediction> {
    rows.iter()
        .map(|r| {
            let start = Instant::now();
            let outcome = classifier.decide(&r.text);
            let latency_us = start.elapsed().as_micros() as u64;
            let top = outcome.ranking.candidates.first();
            let top_id = top.map(|c| c.intent.clone()).unwrap_or_default();
            let predicted = match outcome.decision {
                Decision::Fallback => OOS.to_string(),
                _ => top_id.clone(),
            };
            Prediction {
                text: r.text.clone(),
                gold: gold_id(&r.intent),
                predicted,
                decision: outcome.decision.kind(),
                confidence: top.map(|c| c.score).unwrap_or(0.0),
                latency_us,
                oos_wins: top.is_some_and(|c| outcome.ranking.out_of_scope > c.score),
                top: top_id,
            }
        })
        .collect()
}

fn gold_id(label: &str) -> String {
    if label == OOS {
        OOS.to_string()
    } else {
        label_to_id(label)
    }
}

/// Writes predictions as `text,gold,predicted,decision,confidence,latency_us`.
pub fn write_predictions(path: &Path, preds: &[Prediction]) -> Result<(), EvalError> {
    let err = |e: csv::Error| EvalError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record([
        "text",
        "gold",
        "predicted",
        "decision",
        "confidence",
        "latency_us",
    ])
    .map_err(err)?;
    for p in preds {
        w.write_record([
            p.text.as_str(),
            &p.gold,
            &p.predicted,
            p.decision,
            &format!("{:.4}", p.confidence),
            &p.latency_us.to_string(),
        ])
        .map_err(err)?;
    }
    w.flush().map_err(|e| EvalError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The numbers `frontdesk eval` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub inscope_accuracy: f64,
    /// `None` when the data has no `oos` rows.
    pub oos_precision: Option<f64>,
    pub oos_recall: Option<f64>,
    /// (gold, predicted, count), most frequent first.
    pub confused: Vec<(String, String, usize)>,
    /// Decisions by kind.
    pub decisions: BTreeMap<&'static str, usize>,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
}

pub fn summarize(preds: &[Prediction]) -> Summary {
    let n = preds.len().max(1) as f64;
    let correct = preds.iter().filter(|p| p.gold == p.predicted).count();
    let inscope: Vec<&Prediction> = preds.iter().filter(|p| p.gold != OOS).collect();
    let in_correct = inscope.iter().filter(|p| p.gold == p.predicted).count();
    let oos_gold = preds.iter().filter(|p| p.gold == OOS).count();
    let oos_pred = preds.iter().filter(|p| p.predicted == OOS).count();
    let oos_tp = preds
        .iter()
        .filter(|p| p.gold == OOS && p.predicted == OOS)
        .count();
    // Macro-F1 over the classes present in gold.
    let mut tp: HashMap<&str, usize> = HashMap::new();
    let mut fp: HashMap<&str, usize> = HashMap::new();
    let mut fneg: HashMap<&str, usize> = HashMap::new();
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for p in preds {
        if p.gold == p.predicted {
            *tp.entry(&p.gold).or_default() += 1;
        } else {
            *fp.entry(&p.predicted).or_default() += 1;
            *fneg.entry(&p.gold).or_default() += 1;
            *pairs.entry((&p.gold, &p.predicted)).or_default() += 1;
        }
    }
    let classes: HashSet<&str> = preds.iter().map(|p| p.gold.as_str()).collect();
    let f1_sum: f64 = classes
        .iter()
        .map(|c| {
            let t = *tp.get(c).unwrap_or(&0) as f64;
            let f = *fp.get(c).unwrap_or(&0) as f64;
            let m = *fneg.get(c).unwrap_or(&0) as f64;
            if t == 0.0 {
                0.0
            } else {
                2.0 * t / (2.0 * t + f + m)
            }
        })
        .sum();
    let mut confused: Vec<(String, String, usize)> = pairs
        .into_iter()
        .map(|((g, p), c)| (g.to_string(), p.to_string(), c))
        .collect();
    confused.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    confused.truncate(10);
    let mut decisions = BTreeMap::new();
    for p in preds {
        *decisions.entry(p.decision).or_default() += 1;
    }
    let mut lat: Vec<u64> = preds.iter().map(|p| p.latency_us).collect();
    lat.sort_unstable();
    let pct = |q: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)]
        }
    };
    Summary {
        rows: preds.len(),
        accuracy: correct as f64 / n,
        macro_f1: f1_sum / classes.len().max(1) as f64,
        inscope_accuracy: in_correct as f64 / inscope.len().max(1) as f64,
        oos_precision: (oos_gold > 0).then(|| {
            if oos_pred == 0 {
                0.0
            } else {
                oos_tp as f64 / oos_pred as f64
            }
        }),
        oos_recall: (oos_gold > 0).then(|| oos_tp as f64 / oos_gold as f64),
        confused,
        decisions,
        latency_p50_us: pct(0.5),
        latency_p99_us: pct(0.99),
    }
}

/// One point of a threshold sweep: reject when the top score is below
/// `threshold` (or the out-of-scope class wins).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    pub threshold: f32,
    pub inscope_accuracy: f64,
    pub oos_recall: Option<f64>,
    /// Share of in-scope rows rejected.
    pub inscope_rejected: f64,
}

fn rejected(p: &Prediction, t: f32) -> bool {
    p.oos_wins || p.confidence < t || p.top.is_empty()
}

pub fn sweep(preds: &[Prediction], thresholds: &[f32]) -> Vec<SweepPoint> {
    let inscope: Vec<&Prediction> = preds.iter().filter(|p| p.gold != OOS).collect();
    let oos: Vec<&Prediction> = preds.iter().filter(|p| p.gold == OOS).collect();
    thresholds
        .iter()
        .map(|&t| SweepPoint {
            threshold: t,
            inscope_accuracy: inscope
                .iter()
                .filter(|p| !rejected(p, t) && p.top == p.gold)
                .count() as f64
                / inscope.len().max(1) as f64,
            oos_recall: (!oos.is_empty())
                .then(|| oos.iter().filter(|p| rejected(p, t)).count() as f64 / oos.len() as f64),
            inscope_rejected: inscope.iter().filter(|p| rejected(p, t)).count() as f64
                / inscope.len().max(1) as f64,
        })
        .collect()
}

/// Options of `calibrate`.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub folds: usize,
    /// Share of `oos` rows to reject (when the data has any).
    pub target_oos_recall: f64,
    /// Share of answered rows that must be right at the answer threshold.
    pub target_precision: f64,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            // Twenty folds train each fold's model on 95% of the rows. A
            // held-out off-topic row meets the off-topic examples of the
            // other folds only, and with fewer of them it is declined less
            // often than a new message is by the final model: the folds
            // then pick a stricter threshold than the target needs. On
            // CLINC150 val without the model, 0.80 asked gave 0.85 with 10
            // folds (90% of the rows) and 0.83 with 20 (BENCHMARKS.md,
            // "Out-of-scope recall on unseen data"); 5 folds overstated
            // the other way before the siblings were kept apart.
            folds: 20,
            target_oos_recall: 0.80,
            target_precision: 0.95,
        }
    }
}

/// What `calibrate` chose, and what it saw on the folds.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub raw: RawCalibration,
    /// Cross-validated predictions the thresholds were chosen on.
    pub predictions: Vec<Prediction>,
}

/// Scores each row with a classifier that never saw it: the rows are split
/// into folds, and for each fold the intent set is rebuilt without the
/// fold's texts among its examples. Thresholds are then chosen on those
/// scores: `clarify` (the fallback boundary) for the target out-of-scope
/// recall, `answer` for the target precision, per intent where an intent
/// has at least 20 predictions.
pub fn calibrate(
    set: &IntentSet,
    rows: &[Row],
    options: &CalibrateOptions,
    model: &crate::classify::Model,
) -> Result<Calibration, EvalError> {
    if rows.len() < 2 {
        return Err(EvalError::Invalid(format!(
            "calibrate needs at least 2 rows to cross-validate, not {}",
            rows.len()
        )));
    }
    let max_folds = rows.len().min(50);
    if options.folds < 2 || options.folds > max_folds {
        return Err(EvalError::Invalid(format!(
            "--folds must be from 2 to {max_folds} for {} rows, not {}",
            rows.len(),
            options.folds
        )));
    }
    for (name, v) in [
        ("--target-oos-recall", options.target_oos_recall),
        ("--target-precision", options.target_precision),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            return Err(EvalError::Invalid(format!(
                "{name} must be in (0, 1], not {v}"
            )));
        }
    }
    if rows
        .iter()
        .all(|r| gold_id(&r.intent) != OOS && set.get(&gold_id(&r.intent)).is_none())
    {
        return Err(EvalError::Invalid(
            "no row is labelled with an intent of this set (or `oos`): nothing to calibrate on"
                .into(),
        ));
    }
    let siblings = oos_siblings(set, rows, model);
    let predictions = cross_validate(set, rows, options.folds, model, &siblings)?;
    let raw = choose_thresholds(set, &predictions, options);
    Ok(Calibration { raw, predictions })
}

/// Each row's prediction by a classifier that never saw it (the fold's
/// texts are taken out of the examples) nor, for an `oos` row, its
/// `siblings` among the out-of-scope examples.
fn cross_validate(
    set: &IntentSet,
    rows: &[Row],
    folds: usize,
    model: &crate::classify::Model,
    siblings: &HashMap<usize, Vec<usize>>,
) -> Result<Vec<Prediction>, EvalError> {
    // Rows are spread by a hash of their place; with as many folds as rows
    // (what `calibrate` picks for fewer rows than its default), each row is
    // a fold of its own: a hash would leave some folds empty and others
    // with two rows.
    let fold_of = |i: usize| {
        if folds == rows.len() {
            i
        } else {
            (crate::util::hash::fnv_u64(i as u64)) as usize % folds
        }
    };
    let mut predictions: Vec<Option<Prediction>> = vec![None; rows.len()];
    let results: Vec<Result<Vec<(usize, Prediction)>, EvalError>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(folds);
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for f in (w..folds).step_by(workers) {
                        let held: Vec<usize> =
                            (0..rows.len()).filter(|&i| fold_of(i) == f).collect();
                        let texts: HashSet<String> =
                            held.iter().map(|&i| normalize(&rows[i].text)).collect();
                        let mut fold_set = set.clone();
                        for intent in &mut fold_set.intents {
                            intent.examples.retain(|e| !texts.contains(&normalize(e)));
                        }
                        // A held-out out-of-scope row is scored without its
                        // family, as a new off-topic message would be.
                        let mut away: HashSet<usize> = HashSet::new();
                        for close in held.iter().filter_map(|i| siblings.get(i)) {
                            away.extend(close.iter().copied());
                        }
                        let mut k = 0;
                        fold_set.out_of_scope.retain(|e| {
                            k += 1;
                            !away.contains(&(k - 1)) && !texts.contains(&normalize(e))
                        });
                        let classifier = match Classifier::new_with(Arc::new(fold_set), model) {
                            Ok(c) => c,
                            Err(e) => return Err(EvalError::Invalid(e.to_string())),
                        };
                        if classifier.has_model() {
                            let texts: Vec<&str> =
                                held.iter().map(|&i| rows[i].text.as_str()).collect();
                            classifier.prefetch(&texts);
                        }
                        let fold_rows: Vec<Row> = held.iter().map(|&i| rows[i].clone()).collect();
                        for (i, p) in held.into_iter().zip(evaluate(&classifier, &fold_rows)) {
                            out.push((i, p));
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    for r in results {
        for (i, p) in r? {
            predictions[i] = Some(p);
        }
    }
    Ok(predictions.into_iter().flatten().collect())
}

/// Cosine (of meanings with the model, else of word vectors) from which an
/// out-of-scope example counts as a sibling of an out-of-scope row: where
/// the closest examples' vote starts to count (`NEIGHBOUR_CLOSE.0` in
/// `classify`). Below it an example is a loose resemblance, as a new
/// off-topic message has to the examples of other topics.
const SIBLING_COSINE: f32 = 0.5;

/// For each `oos` row, the indices of the set's out-of-scope examples that
/// are its close relatives (cosine at least `SIBLING_COSINE`, by the
/// similarity the classifier uses: meanings with the model, words
/// without).
///
/// Off-topic messages come in families of near-duplicates (CLINC150's
/// train.csv has several weather, several translation questions among its
/// 100). Held out one by one, a row still meets its siblings among the
/// examples of the other folds, and the classifier declines it for that
/// likeness; a new off-topic message mostly has no sibling among the
/// examples. Folds that keep the siblings overstate the recall the
/// thresholds deliver on new data (BENCHMARKS.md, "Out-of-scope recall on
/// unseen data").
fn oos_siblings(
    set: &IntentSet,
    rows: &[Row],
    model: &crate::classify::Model,
) -> HashMap<usize, Vec<usize>> {
    let oos: Vec<usize> = (0..rows.len())
        .filter(|&i| gold_id(&rows[i].intent) == OOS)
        .collect();
    if oos.is_empty() || set.out_of_scope.is_empty() {
        return HashMap::new();
    }
    let row_texts: Vec<&str> = oos.iter().map(|&i| rows[i].text.as_str()).collect();
    let ex_texts: Vec<&str> = set.out_of_scope.iter().map(String::as_str).collect();
    let likeness: Vec<Vec<f32>> = match (model.embed(&row_texts), model.embed(&ex_texts)) {
        (Some(r), Some(e)) => r
            .iter()
            .map(|a| {
                e.iter()
                    .map(|b| a.iter().zip(b).map(|(x, y)| x * y).sum())
                    .collect()
            })
            .collect(),
        _ => {
            // Only the vocabulary is needed: no epochs.
            let quick = crate::classify::Params {
                epochs: 0,
                ..Default::default()
            };
            let words = Classifier::with_params(
                Arc::new(set.clone()),
                quick,
                crate::classify::Fusion::default(),
            );
            let e = words.word_vectors(&ex_texts);
            words
                .word_vectors(&row_texts)
                .iter()
                .map(|a| {
                    e.iter()
                        .map(|b| crate::classify::lexical::dot(a, b))
                        .collect()
                })
                .collect()
        }
    };
    oos.into_iter()
        .zip(likeness)
        .map(|(i, l)| {
            let close = (0..l.len()).filter(|&k| l[k] >= SIBLING_COSINE).collect();
            (i, close)
        })
        .collect()
}

fn grid() -> Vec<f32> {
    (1..100).map(|i| i as f32 / 100.0).collect()
}

fn precision_above(preds: &[&Prediction], t: f32) -> Option<(f64, usize)> {
    let answered: Vec<&&Prediction> = preds.iter().filter(|p| !rejected(p, t)).collect();
    if answered.is_empty() {
        return None;
    }
    let right = answered.iter().filter(|p| p.top == p.gold).count();
    Some((right as f64 / answered.len() as f64, answered.len()))
}

fn choose_thresholds(
    set: &IntentSet,
    preds: &[Prediction],
    options: &CalibrateOptions,
) -> RawCalibration {
    let has_oos = preds.iter().any(|p| p.gold == OOS);
    let clarify = if has_oos {
        // The lowest threshold that rejects the target share of oos rows.
        sweep(preds, &grid())
            .into_iter()
            .find(|s| s.oos_recall.unwrap_or(0.0) >= options.target_oos_recall)
            .map(|s| s.threshold)
            .unwrap_or(0.99)
    } else {
        // No out-of-scope data: reject at most 3% of the right answers.
        let mut right: Vec<f32> = preds
            .iter()
            .filter(|p| p.top == p.gold && !p.oos_wins)
            .map(|p| p.confidence)
            .collect();
        right.sort_by(f32::total_cmp);
        right
            .get(right.len() * 3 / 100)
            .copied()
            .unwrap_or(0.3)
            .clamp(0.05, 0.5)
    };
    let all: Vec<&Prediction> = preds.iter().collect();
    let answer_for = |preds: &[&Prediction], floor: f32| -> Option<f32> {
        grid().into_iter().filter(|&t| t >= floor).find(|&t| {
            precision_above(preds, t).is_some_and(|(p, _)| p >= options.target_precision)
        })
    };
    let answer = answer_for(&all, clarify).unwrap_or(0.99).max(clarify);
    let mut per_intent = BTreeMap::new();
    for intent in &set.intents {
        let mine: Vec<&Prediction> = preds.iter().filter(|p| p.top == intent.id).collect();
        if precision_above(&mine, clarify).is_none_or(|(_, n)| n < 20) {
            continue;
        }
        if let Some(t) = answer_for(&mine, clarify) {
            if (t - answer).abs() >= 0.05 {
                per_intent.insert(intent.id.clone(), round2(t));
            }
        }
    }
    let rows = preds.len();
    let oos_rows = preds.iter().filter(|p| p.gold == OOS).count();
    RawCalibration {
        measured_on: format!(
            "{rows} rows ({oos_rows} oos), {}-fold cross-validation, target oos recall {:.2}, target precision {:.2}",
            options.folds, options.target_oos_recall, options.target_precision
        ),
        fingerprint: set.fingerprint.clone(),
        answer: round2(answer),
        clarify: round2(clarify),
        margin: Some(0.15),
        clarify_coverage: None,
        intents: per_intent,
    }
}

fn round2(x: f32) -> f64 {
    (x as f64 * 100.0).round() / 100.0
}

/// Writes `_calibration.toml` into the intent directory.
pub fn write_calibration(dir: &Path, raw: &RawCalibration) -> Result<PathBuf, EvalError> {
    let path = dir.join(CALIBRATION_FILE);
    let body = toml::to_string(raw).map_err(|e| EvalError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let text = format!(
        "# Thresholds measured by `frontdesk calibrate`; every load of this directory uses them.\n\
         # answer: at or above, the bot answers. clarify: at or above (below answer), it asks\n\
         # \"Did you mean …?\"; below, it falls back. Re-run calibrate after editing intents.\n{body}"
    );
    std::fs::write(&path, text).map_err(|e| EvalError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

/// The summary as `frontdesk eval --json` prints it: one JSON object,
/// keys in this order, ratios rounded to 6 decimals (thresholds to 2,
/// `load_ms` to 1) as the text report does. A ratio that is not a number
/// is `null`.
pub fn summary_json(s: &Summary, load_ms: f64, sweep: Option<&[SweepPoint]>) -> String {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        rows: usize,
        accuracy: f64,
        macro_f1: f64,
        inscope_accuracy: f64,
        oos_precision: Option<f64>,
        oos_recall: Option<f64>,
        decisions: &'a BTreeMap<&'static str, usize>,
        latency_p50_us: u64,
        latency_p99_us: u64,
        load_ms: f64,
        confused: Vec<Confused<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sweep: Option<Vec<Point>>,
    }
    #[derive(serde::Serialize)]
    struct Confused<'a> {
        gold: &'a str,
        predicted: &'a str,
        count: usize,
    }
    #[derive(serde::Serialize)]
    struct Point {
        threshold: f64,
        inscope_accuracy: f64,
        oos_recall: Option<f64>,
        inscope_rejected: f64,
    }
    let round = |x: f64, places: i32| {
        let k = 10f64.powi(places);
        (x * k).round() / k
    };
    let r6 = |x: f64| round(x, 6);
    let json = Json {
        rows: s.rows,
        accuracy: r6(s.accuracy),
        macro_f1: r6(s.macro_f1),
        inscope_accuracy: r6(s.inscope_accuracy),
        oos_precision: s.oos_precision.map(r6),
        oos_recall: s.oos_recall.map(r6),
        decisions: &s.decisions,
        latency_p50_us: s.latency_p50_us,
        latency_p99_us: s.latency_p99_us,
        load_ms: round(load_ms, 1),
        confused: s
            .confused
            .iter()
            .map(|(gold, predicted, count)| Confused {
                gold,
                predicted,
                count: *count,
            })
            .collect(),
        sweep: sweep.map(|points| {
            points
                .iter()
                .map(|p| Point {
                    threshold: round(f64::from(p.threshold), 2),
                    inscope_accuracy: r6(p.inscope_accuracy),
                    oos_recall: p.oos_recall.map(r6),
                    inscope_rejected: r6(p.inscope_rejected),
                })
                .collect()
        }),
    };
    // Plain data with string keys: serialising it cannot fail (a NaN
    // becomes `null`).
    serde_json::to_string(&json).expect("a summary serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(label: &str) -> Summary {
        Summary {
            rows: 2,
            accuracy: 0.5,
            macro_f1: 0.25,
            inscope_accuracy: 1.0,
            oos_precision: None,
            oos_recall: Some(0.0),
            confused: vec![(label.to_string(), "oos".to_string(), 1)],
            decisions: BTreeMap::from([("answer", 1), ("fallback", 1)]),
            latency_p50_us: 10,
            latency_p99_us: 20,
        }
    }

    /// The bug this pins: the JSON was built with `format!` and `{:?}`,
    /// whose escapes (`\u{1}`, `\'`) are not JSON's.
    #[test]
    fn summary_json_is_json_whatever_the_labels() {
        let sweep = [SweepPoint {
            threshold: 0.5,
            inscope_accuracy: 1.0,
            oos_recall: None,
            inscope_rejected: 0.0,
        }];
        for label in [
            "plain",
            "quote \" and \\ back",
            "ctrl \u{1} bell \u{7}",
            "né \u{1F600}",
            "tab\tnl\n",
        ] {
            let text = summary_json(&summary(label), 1.5, Some(&sweep));
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label:?}: {e}\n{text}"));
            assert_eq!(v["confused"][0]["gold"], label, "{text}");
            assert_eq!(v["confused"][0]["count"], 1);
            assert_eq!(v["decisions"]["fallback"], 1);
            assert_eq!(v["oos_precision"], serde_json::Value::Null);
            assert_eq!(v["accuracy"], 0.5);
            assert_eq!(v["sweep"][0]["threshold"], 0.5);
            assert_eq!(v["sweep"][0]["oos_recall"], serde_json::Value::Null);
        }
        // No rows: a ratio that is not a number is null, not `NaN`.
        let mut empty = summary("x");
        empty.accuracy = f64::NAN;
        let v: serde_json::Value = serde_json::from_str(&summary_json(&empty, 0.0, None)).unwrap();
        assert_eq!(v["accuracy"], serde_json::Value::Null);
        assert!(v.get("sweep").is_none());
    }

    /// What a visitor asks the shop, in the words of a request.
    const SHOP: [(&str, [&str; 8]); 8] = [
        (
            "track_order",
            [
                "track my order",
                "find out where my package is",
                "check my delivery status",
                "see when my parcel arrives",
                "follow my shipment",
                "know where my order is",
                "get the tracking number for my order",
                "check if my order has shipped",
            ],
        ),
        (
            "return_item",
            [
                "return an item",
                "send back a jacket that does not fit",
                "get a return label",
                "return these shoes",
                "send this product back",
                "start a return",
                "exchange a shirt for another size",
                "return a gift",
            ],
        ),
        (
            "refund",
            [
                "get my money back",
                "get a refund",
                "check on my refund",
                "be refunded for a broken item",
                "know when my refund arrives",
                "get a refund to my card",
                "claim a refund for a late order",
                "ask for my money back",
            ],
        ),
        (
            "change_address",
            [
                "change my delivery address",
                "update my shipping address",
                "ship my order to a new address",
                "correct the address on my order",
                "send my parcel to my office instead",
                "edit my address",
                "fix a typo in my address",
                "deliver to my neighbour's address",
            ],
        ),
        (
            "cancel_order",
            [
                "cancel my order",
                "stop my order before it ships",
                "cancel an order i just placed",
                "undo my purchase",
                "call off my order",
                "cancel one item of my order",
                "withdraw my order",
                "cancel the order i made yesterday",
            ],
        ),
        (
            "payment",
            [
                "pay with paypal",
                "pay by credit card",
                "pay in instalments",
                "use a gift card to pay",
                "pay on invoice",
                "see which payment methods you accept",
                "pay with apple pay",
                "pay by bank transfer",
            ],
        ),
        (
            "account",
            [
                "reset my password",
                "log into my account",
                "change my account email",
                "recover my account",
                "unlock my account",
                "delete my account",
                "update my password",
                "sign in to my account",
            ],
        ),
        (
            "store_hours",
            [
                "know your opening hours",
                "visit your store on sunday",
                "find out when your shop opens",
                "know when you close today",
                "come to the store on a holiday",
                "check your hours on saturday",
                "know if the shop is open late",
                "find your store's opening times",
            ],
        ),
    ];
    const SHOP_FRAMES: [&str; 8] = [
        "i want to {}",
        "how do i {}",
        "can you help me {}",
        "i need to {}",
        "is it possible to {}",
        "please help me {}",
        "hi, i would like to {}",
        "how can i {}",
    ];

    /// Off-topic subjects, in the shop's verbs (a visitor asks a shop bot
    /// to track a flight or cancel a gym membership); each is asked several
    /// times in different frames, as CLINC150's out-of-scope rows come in
    /// families.
    const OFF_TOPIC: [&str; 80] = [
        "track a flight to new york",
        "return a library book",
        "get a cheap flight to barcelona",
        "check the weather for tomorrow",
        "change the oil in my car",
        "update my phone's software",
        "cancel my gym membership",
        "pay my electricity bill",
        "reset my wifi router",
        "log into my bank app",
        "find out who won the football match",
        "know how tall mount everest is",
        "send a letter to italy",
        "ship a parcel with the post office",
        "order a pizza for tonight",
        "book a table at a restaurant",
        "fix a flat bicycle tire",
        "get a recipe for banana bread",
        "check my blood pressure",
        "change a car battery",
        "cancel my netflix subscription",
        "pay a parking ticket",
        "reset my phone to factory settings",
        "open a savings account",
        "return a rental car",
        "track my fitness progress",
        "check the score of the basketball game",
        "change my profile picture on instagram",
        "book a doctor's appointment",
        "find a hiking trail near the lake",
        "learn to play the guitar",
        "pay taxes online",
        "know the capital of australia",
        "get a visa for japan",
        "renew my passport",
        "know when the next full moon is",
        "cook pasta carbonara",
        "train my puppy to sit",
        "know how far away the moon is",
        "install a new printer",
        "change the language of my tv",
        "cancel a dentist appointment",
        "send money to a friend abroad",
        "check the train times to berlin",
        "get tickets for a concert",
        "fix a leaking tap",
        "know the speed of light",
        "open a jar that is stuck",
        "plant tomatoes on my balcony",
        "clean a cast iron pan",
        "update my linkedin profile",
        "reset my car's oil light",
        "return a call from my boss",
        "order flowers for my mom",
        "book a hotel in paris",
        "find a good movie to watch tonight",
        "get rid of a wine stain",
        "change a light bulb",
        "write a cover letter",
        "know who painted the mona lisa",
        "track a hurricane",
        "check my credit score",
        "unlock my phone screen",
        "delete old photos from my phone",
        "sign up for a marathon",
        "translate hello into japanese",
        "tie a bow tie",
        "make cold brew coffee",
        "convert dollars to yen",
        "recover deleted emails",
        "know the rules of chess",
        "knit a scarf",
        "solve a rubik cube",
        "find the nearest gas station",
        "boil an egg",
        "meditate before sleeping",
        "get my car insured",
        "set an alarm for seven",
        "play a song by the beatles",
        "paint a bedroom wall",
    ];

    /// `k` distinct picks from `0..n`, drawn with `seed`.
    fn picks(seed: u64, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + crate::util::hash::fnv_u64(seed.wrapping_mul(1_000_003) + i as u64)
                as usize
                % (n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }

    fn row(text: String, intent: &str) -> Row {
        Row {
            text,
            intent: intent.to_string(),
        }
    }

    /// A shop set whose off-topic examples are `known` subjects asked four
    /// ways each (the split of subjects drawn with `seed`), calibrated with
    /// the siblings left out of each fold and with them kept; each target's
    /// clarify threshold is then tried on the other subjects' messages, new
    /// to the classifier trained on the whole set. Returns per target the
    /// recall each procedure delivers there, and a report.
    fn delivered_on_new_subjects(
        seed: u64,
        known: usize,
        folds: usize,
        targets: &[f64],
    ) -> (Vec<(f64, f64, f64)>, String) {
        let mut rows = Vec::new();
        for (s, (id, phrases)) in SHOP.iter().enumerate() {
            for k in picks(s as u64, 64, 20) {
                rows.push(row(SHOP_FRAMES[k % 8].replace("{}", phrases[k / 8]), id));
            }
        }
        let subjects = picks(seed, OFF_TOPIC.len(), OFF_TOPIC.len());
        let asked = |subject: usize| -> Vec<Row> {
            picks(2000 + subject as u64, SHOP_FRAMES.len(), 4)
                .into_iter()
                .map(|f| row(SHOP_FRAMES[f].replace("{}", OFF_TOPIC[subject]), OOS))
                .collect()
        };
        let (known, new) = subjects.split_at(known);
        rows.extend(known.iter().flat_map(|&s| asked(s)));
        let unseen: Vec<Row> = new.iter().flat_map(|&s| asked(s)).collect();

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("intents");
        import(&rows, &dir.path().join("shop.csv"), &out, false).unwrap();
        let set = crate::intents::load_dir(&out).unwrap();
        let model = crate::classify::Model::none();
        let whole = Classifier::new_with(Arc::new(set.clone()), &model).unwrap();
        let on_unseen = evaluate(&whole, &unseen);
        let delivered = |clarify: f64| sweep(&on_unseen, &[clarify as f32])[0].oos_recall.unwrap();
        let options = CalibrateOptions {
            folds,
            ..Default::default()
        };
        // Both procedures' cross-validated scores; each target's threshold
        // is then chosen on them.
        let apart = calibrate(&set, &rows, &options, &model)
            .unwrap()
            .predictions;
        let kept = cross_validate(&set, &rows, folds, &model, &HashMap::new()).unwrap();
        let mut report = String::new();
        let mut results = Vec::new();
        for &target in targets {
            let options = CalibrateOptions {
                target_oos_recall: target,
                ..options.clone()
            };
            let now = choose_thresholds(&set, &apart, &options).clarify;
            let old = choose_thresholds(&set, &kept, &options).clarify;
            let (now_r, old_r) = (delivered(now), delivered(old));
            report += &format!(
                "target {target:.2}: siblings apart: clarify {now:.2} delivers {now_r:.3}; \
                 siblings kept: clarify {old:.2} delivers {old_r:.3}\n"
            );
            results.push((target, now_r, old_r));
        }
        (results, report)
    }

    /// The bug this pins (issue 19, item 3): folds that keep a held-out
    /// off-topic row's near-duplicates among the examples decline it for
    /// that likeness (here every known row, at the lowest threshold), so
    /// the threshold they choose promises a recall that new off-topic
    /// subjects do not get. With the siblings apart the folds see what a
    /// new subject sees. Measured over 8 draws (BENCHMARKS.md,
    /// "Out-of-scope recall on unseen data"): kept, 0.72-0.83 delivered
    /// whatever the target; apart, at most 0.03 below the target at
    /// 0.80-0.90 (0.07 once at 0.95), but up to 0.15 above it at 0.80
    /// (each fold also loses the families of its other held rows: a
    /// conservative bias), hence the high targets here and the loose
    /// upper bound.
    #[test]
    fn calibrated_oos_recall_holds_on_new_off_topic_subjects() {
        let (results, report) = delivered_on_new_subjects(1000, 20, 5, &[0.90, 0.95]);
        for (target, apart, kept) in results {
            assert!(apart >= target - 0.03, "{report}");
            assert!(apart <= target + 0.10, "{report}");
            assert!(kept < target - 0.05, "{report}");
        }
        eprintln!("{report}");
    }

    /// The draws behind the numbers above, printed (minutes in the dev
    /// profile): `cargo test --lib eval::tests::oos_recall_on_new_subjects_over_draws
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn oos_recall_on_new_subjects_over_draws() {
        for known in [15, 20] {
            for seed in 1000..1004 {
                let targets = [0.80, 0.85, 0.90, 0.95];
                let (_, report) = delivered_on_new_subjects(seed, known, 5, &targets);
                eprintln!("{known} known subjects, seed {seed}\n{report}");
            }
        }
    }

    /// The bug this pins: import wrote TOML by hand, and a source path with
    /// a line break ended the header comment early, so the file did not
    /// load. The examples must come back exactly, whatever they hold.
    #[test]
    fn import_writes_toml_that_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let texts = [
            "say \"hi\" please",
            "back\\slash and C:\\path",
            "two\nlines",
            "crlf\r\nhere",
            "café crème",
            "triple \"\"\" quotes",
            "triple ''' singles",
            "ctrl \u{1} and del \u{7f} chars",
            "tab\there",
            "emoji \u{1F600} ok",
            "all ''' and \"\"\" and \\\"\"\"\nacross lines",
            "ends in a quote\"",
            "'starts with one",
        ];
        let mut rows: Vec<Row> = texts
            .iter()
            .map(|t| Row {
                text: t.to_string(),
                intent: "Odd \"Label\"".to_string(),
            })
            .collect();
        rows.push(Row {
            text: "what is the \"weather\"\ntomorrow".into(),
            intent: OOS.into(),
        });
        let source = dir.path().join("odd\nname = 1 \u{1}.csv");
        let out = dir.path().join("intents");
        let report = import(&rows, &source, &out, false).unwrap();
        assert_eq!(
            (report.intents, report.examples, report.out_of_scope),
            (1, texts.len(), 1)
        );
        let set = crate::intents::load_dir(&out).unwrap_or_else(|e| {
            let files: Vec<String> = std::fs::read_dir(&out)
                .unwrap()
                .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                .collect();
            panic!("{e}\n{}", files.join("\n----\n"))
        });
        let intent = set.get("odd__label_").expect("the imported intent");
        assert_eq!(intent.examples, texts);
        assert_eq!(set.out_of_scope, ["what is the \"weather\"\ntomorrow"]);
    }
}
