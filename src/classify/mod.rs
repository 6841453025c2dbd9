//! Classification: a message in, a ranked and explained `Ranking` out, with
//! the signals a decision reads (out-of-scope score, coverage,
//! frustration). What to do with it is decided elsewhere
//! (`conversation::decide`): this module knows nothing of conversations.
//!
//! Layers, in order of precedence:
//! 1. rules (`rules.rs`): keywords and patterns the admin wrote. A hit lifts
//!    its intent to at least `RULE_CONFIDENCE`;
//! 2. lexical (`lexical.rs`): a linear model over word and character n-grams
//!    trained on the examples, discounted by how much of the message the
//!    examples cover.
//!
//! 3. semantic (`semantic.rs`, feature `semantic`; `transformer` adds f32): a sentence-embedding
//!    model and a softmax head trained on the examples' embeddings (and
//!    on each intent's id read as words); it knows that "my parcel never
//!    showed up" is about an order that did not arrive although no word is
//!    shared.
//!
//! Fusion is a noisy-or of the rules with the model, so a rule hit raises an
//! intent but never erases the evidence of the others: two intents with
//! strong evidence stay close, and the policy asks which one was meant.
//! With the semantic layer on, the lexical regression is trained on the
//! n-grams and the sentence embedding together (`SEMANTIC_WEIGHT` scales
//! the embedding), so one model learns how far to trust each; the trace
//! shows what the embedding alone says (`semantic`) and the example closest
//! in meaning. A softmax head on the embeddings alone is averaged in
//! (`HEAD_WEIGHT`): few-shot sets need it, where the joint model leans on
//! the n-grams (BENCHMARKS.md has the measurements). Last, the examples
//! closest in meaning vote (`NEIGHBOUR_*`): each intent's closest example
//! counts, sharply, and only when some example is close; a near-copy of an
//! example is evidence no linear model weighs fully.

pub mod frustration;
pub mod lexical;
use crate::util::normalize;
pub mod rules;
#[cfg(feature = "semantic")]
pub mod semantic;

use std::path::Path;
use std::sync::Arc;

use crate::intents::{self, ErrorKind, IntentSet, LoadError, LoadErrors};
pub use frustration::Frustration;
pub use lexical::Params;

/// Share of the embedding-only head in the final probabilities (chosen
/// among 0.3, 0.5 and 0.7 on the same held-out fifth).
#[cfg(feature = "semantic")]
const HEAD_WEIGHT: f32 = 0.5;

/// Share of the closest examples' vote in the final probabilities: a
/// softmax over each class's closest example's cosine at temperature
/// `NEIGHBOUR_TEMPERATURE`. Its share grows from 0 when the closest example
/// of all has cosine `NEIGHBOUR_CLOSE.0` to the full weight at
/// `NEIGHBOUR_CLOSE.1`: a loose resemblance ("jeans" in a refund question
/// against "these jeans are too small") must not decide. Chosen by 5-fold
/// cross-validation on BANKING77's train.csv, checked on CLINC150's
/// (BENCHMARKS.md), never on dev or val.
#[cfg(feature = "semantic")]
const NEIGHBOUR_WEIGHT: f32 = 0.3;
#[cfg(feature = "semantic")]
const NEIGHBOUR_TEMPERATURE: f32 = 0.03;
#[cfg(feature = "semantic")]
const NEIGHBOUR_CLOSE: (f32, f32) = (0.5, 0.8);

/// Scale of the embedding features beside the n-grams (each n-gram block
/// has norm 1.5) when the semantic layer is on. Chosen among 1, 2, 2.5, 3
/// and 4 on a held-out fifth of BANKING77's train.csv (BENCHMARKS.md).
pub const SEMANTIC_WEIGHT: f32 = 2.0;

/// The optional semantic model, shared by every classifier built with it
/// (and by reloads). Without the `semantic` feature it is always empty.
#[derive(Clone, Default)]
pub struct Model {
    #[cfg(feature = "semantic")]
    encoder: Option<Arc<semantic::Encoder>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_on() {
            "Model(on)"
        } else {
            "Model(off)"
        })
    }
}

/// A model directory that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// The number format the model computes in.
///
/// - `f32`: rust-bert through libtorch, the reference (a `transformer`
///   build only; a `semantic` build has `int8` alone).
/// - `bf16`: the same with bfloat16 weights; half the time of `f32` on
///   CPUs with bfloat16 dot products (AVX512-BF16: AMD Zen 4 and later,
///   Intel Cooper Lake and Sapphire Rapids and later), emulated and slower
///   elsewhere. Embeddings agree with `f32` to a cosine of 0.9999.
/// - `int8`: our own forward pass with 8-bit weights
///   (the `int8bert` crate, `crates/int8bert`); fastest on CPUs with AVX512-VNNI (Intel
///   Cascade Lake and later, AMD Zen 4 and later), with an AVX2 kernel
///   for most others. Embeddings agree with `f32` to a cosine of about 0.999.
///
/// `auto`, the default, picks the fastest this CPU does well: `int8` with
/// VNNI, else `bf16` with AVX512-BF16, else `f32`; in a `semantic` build,
/// always `int8`. Accuracy on every
/// labelled set stays within a few messages of `f32` (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Auto,
    F32,
    Bf16,
    Int8,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "auto" => Ok(Precision::Auto),
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            other => Err(format!(
                "precision {other:?} is not one of \"auto\", \"f32\", \"bf16\", \"int8\""
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        })
    }
}

impl Precision {
    /// `auto` made concrete for this CPU.
    pub fn resolve(self) -> Precision {
        match self {
            Precision::Auto if cpu_has_vnni() => Precision::Int8,
            Precision::Auto if cpu_has_bf16() => Precision::Bf16,
            Precision::Auto => Precision::F32,
            p => p,
        }
    }
}

/// Whether `auto` means int8: in a `semantic` build always (int8 is all it
/// computes), in a `transformer` build where the CPU has the int8 dot
/// products (AVX512-VNNI); without the semantic layer nothing computes.
fn cpu_has_vnni() -> bool {
    #[cfg(feature = "semantic")]
    return semantic::auto_is_int8();
    #[cfg(not(feature = "semantic"))]
    false
}

fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

impl Model {
    /// No semantic layer.
    pub fn none() -> Model {
        Model::default()
    }

    /// The model in `dir`, if one is named, at the precision this CPU does
    /// fastest (`Precision::Auto`).
    pub fn load(dir: Option<&Path>) -> Result<Model, ModelError> {
        Model::load_at(dir, Precision::Auto)
    }

    /// The model in `dir`, if one is named, computing at `precision`. A
    /// build without the feature refuses a named model rather than
    /// ignoring it.
    pub fn load_at(dir: Option<&Path>, precision: Precision) -> Result<Model, ModelError> {
        let Some(dir) = dir else {
            return Ok(Model::none());
        };
        #[cfg(feature = "semantic")]
        {
            let e = semantic::Encoder::load(dir, precision.resolve())
                .map_err(|e| ModelError(e.to_string()))?;
            Ok(Model {
                encoder: Some(Arc::new(e)),
            })
        }
        #[cfg(not(feature = "semantic"))]
        let _ = precision;
        #[cfg(not(feature = "semantic"))]
        Err(ModelError(format!(
            "a model directory ({}) is set, but this frontdesk was built without the semantic layer (`--features semantic`, or `transformer`); see models/README.md",
            dir.display()
        )))
    }

    /// The precision the model computes in (None when there is no model).
    pub fn precision(&self) -> Option<Precision> {
        #[cfg(feature = "semantic")]
        return self.encoder.as_ref().map(|e| e.precision());
        #[cfg(not(feature = "semantic"))]
        None
    }

    /// The int8 pass's kernel ("vnni", "avx2" or "portable"), when the
    /// model computes in int8.
    pub fn kernel(&self) -> Option<&'static str> {
        #[cfg(feature = "semantic")]
        return self
            .encoder
            .as_ref()
            .and_then(|e| e.kernel())
            .map(|k| k.name());
        #[cfg(not(feature = "semantic"))]
        None
    }

    /// Unit-length embeddings of `texts` (None without the semantic layer,
    /// or when the model fails); kept in the cache, as examples are.
    pub fn embed(&self, texts: &[&str]) -> Option<Vec<Vec<f32>>> {
        #[cfg(feature = "semantic")]
        return self.encoder.as_ref()?.embed(texts, true).ok();
        #[cfg(not(feature = "semantic"))]
        {
            let _ = texts;
            None
        }
    }

    pub fn is_on(&self) -> bool {
        #[cfg(feature = "semantic")]
        return self.encoder.is_some();
        #[cfg(not(feature = "semantic"))]
        false
    }
}

/// Intent sets built into a classifier (`Classifier::new_with`: every
/// load, reload, validation of an edit and replay of one) since the
/// process started; `/metrics` shows it, so a test can see that one save
/// builds the set once.
static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many intent sets this process has built (see `BUILDS`).
pub fn builds() -> u64 {
    BUILDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Confidence a keyword or pattern hit gives its intent on its own.
pub const RULE_CONFIDENCE: f32 = 0.9;
/// How many candidates a ranking keeps.
pub const TOP_N: usize = 5;
/// How many candidates get nearest-example evidence.
const EVIDENCE_N: usize = 3;

/// Why a candidate scored what it did.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A keyword matched whole-word.
    Keyword { phrase: String },
    /// A pattern matched.
    Pattern { index: usize, source: String },
    /// The most similar example (word cosine in [0, 1]).
    Example { text: String, similarity: f32 },
    /// The example closest in meaning (embedding cosine).
    Meaning { text: String, similarity: f32 },
}

/// One intent's place in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub intent: String,
    /// The fused confidence in [0, 1] that the policy compares to thresholds.
    pub score: f32,
    /// The lexical model's probability, before the coverage discount.
    pub lexical: f32,
    /// The rules' contribution (0 when no rule matched).
    pub rule: f32,
    /// The semantic layer's probability (0 when it is off).
    pub semantic: f32,
    pub evidence: Vec<Evidence>,
    /// Slot values found in the message: (name, value).
    pub slots: Vec<(String, String)>,
}

/// Every intent's standing for one message, best first, with the signals
/// the policy reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub normalized: String,
    /// The top candidates, best first.
    pub candidates: Vec<Candidate>,
    /// Probability of the known-out-of-scope class (0 without such examples).
    pub out_of_scope: f32,
    /// Share of the message's words the examples know, in [0, 1].
    pub coverage: f32,
    pub frustration: Frustration,
}

/// How the layers are fused. The exponent was chosen on CLINC150's
/// out-of-scope rows (see BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Fusion {
    /// Lexical confidence is multiplied by `coverage ^ coverage_power`.
    pub coverage_power: f32,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion {
            coverage_power: 1.0,
        }
    }
}

/// The classifier of one intent set: built fully, then used read-only (it is
/// `Send + Sync`; reloads build a new one and swap it in).
#[derive(Debug, Clone)]
pub struct Classifier {
    intents: Arc<IntentSet>,
    rules: rules::Rules,
    lexical: lexical::Lexical,
    /// Training texts, for nearest-example evidence.
    example_text: Vec<String>,
    /// Class of each training text (parallel to `example_text`).
    #[cfg_attr(not(feature = "semantic"), allow(dead_code))]
    example_class: Vec<usize>,
    /// Whether each training text is a keyword (parallel to
    /// `example_text`): keywords teach the n-grams, not the meaning.
    #[cfg_attr(not(feature = "semantic"), allow(dead_code))]
    example_keyword: Vec<bool>,
    /// Class index of the out-of-scope examples, if there are any.
    oos_class: Option<usize>,
    /// Per-class weights the models were trained with.
    #[cfg_attr(not(feature = "semantic"), allow(dead_code))]
    class_weight: Vec<f32>,
    #[cfg_attr(not(feature = "semantic"), allow(dead_code))]
    params: Params,
    fusion: Fusion,
    #[cfg(feature = "semantic")]
    semantic: Option<Arc<Semantic>>,
}

/// The semantic layer of one intent set: the encoder, and the examples'
/// embeddings for the neighbours' vote and closest-in-meaning evidence.
/// (The lexical model is then trained jointly on n-grams and embeddings.)
#[cfg(feature = "semantic")]
#[derive(Debug)]
struct Semantic {
    encoder: Arc<semantic::Encoder>,
    neighbours: semantic::Neighbours,
    /// A softmax regression on the embeddings alone, averaged with the
    /// joint model: it carries few-shot sets, where the joint model leans
    /// on the n-grams.
    head: semantic::Head,
}

impl Classifier {
    /// Builds the classifier of a validated intent set.
    pub fn new(intents: Arc<IntentSet>) -> Classifier {
        Classifier::with_params(intents, Params::default(), Fusion::default())
    }

    pub fn with_params(intents: Arc<IntentSet>, params: Params, fusion: Fusion) -> Classifier {
        let n = intents.intents.len();
        let mut examples: Vec<(String, usize)> = Vec::new();
        let mut example_text = Vec::new();
        let mut example_keyword = Vec::new();
        for (i, intent) in intents.intents.iter().enumerate() {
            for e in &intent.examples {
                examples.push((normalize::normalize(e), i));
                example_text.push(e.clone());
                example_keyword.push(false);
            }
            for k in &intent.keywords {
                examples.push((k.phrase.clone(), i));
                example_text.push(k.phrase.clone());
                example_keyword.push(true);
            }
        }
        let oos_class = (!intents.out_of_scope.is_empty()).then_some(n);
        for e in &intents.out_of_scope {
            examples.push((normalize::normalize(e), n));
            example_text.push(e.clone());
            example_keyword.push(false);
        }
        let classes = n + usize::from(oos_class.is_some());
        // Out-of-scope examples are many and varied in a small set; weighted
        // so that the class weighs like an average intent, it cannot swallow
        // messages that merely use words the intents lack.
        let mut class_weight = vec![1.0f32; classes];
        if let Some(c) = oos_class {
            let per_intent = (examples.len() - intents.out_of_scope.len()) as f32 / n.max(1) as f32;
            class_weight[c] = (per_intent / intents.out_of_scope.len() as f32).min(1.0);
        }
        let lexical = lexical::Lexical::train(&examples, classes, &class_weight, params.clone());
        Classifier {
            params,
            rules: rules::Rules::new(&intents),
            intents,
            lexical,
            example_text,
            example_class: examples.iter().map(|(_, c)| *c).collect(),
            example_keyword,
            oos_class,
            class_weight,
            fusion,
            #[cfg(feature = "semantic")]
            semantic: None,
        }
    }

    /// The classifier of `intents` with the semantic layer of `model` (if
    /// it has one), trained once.
    pub fn new_with(intents: Arc<IntentSet>, model: &Model) -> Result<Classifier, ModelError> {
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !model.is_on() {
            return Ok(Classifier::new(intents));
        }
        // The n-gram-only fit would be thrown away: skip its epochs, keep
        // the real parameters for the joint fit.
        let quick = Params {
            epochs: 0,
            ..Params::default()
        };
        let mut c = Classifier::with_params(intents, quick, Fusion::default());
        c.params = Params::default();
        c.with_model(model)
    }

    /// Adds the semantic layer of `model` (if it has one): embeds every
    /// example (from the cache where it can) and trains the lexical model
    /// again, jointly on n-grams and embeddings. CPU work of seconds:
    /// callers on an async runtime use `spawn_blocking`.
    fn with_model(self, model: &Model) -> Result<Classifier, ModelError> {
        #[cfg(feature = "semantic")]
        if let Some(encoder) = &model.encoder {
            let mut this = self;
            // An intent's id read as words ("order_status" -> "order
            // status") is one more example of what it means: a name the
            // admin chose says something the model understands, and sets
            // with few examples gain most (BENCHMARKS.md: +1.0 point on a
            // held-out fifth of BANKING77 at 10 examples an intent). It is
            // evidence like any example, so the trace may name it.
            for (i, intent) in this.intents.intents.iter().enumerate() {
                this.example_text.push(intent.id.replace(['_', '-'], " "));
                this.example_class.push(i);
                this.example_keyword.push(false);
            }
            // Keywords are exact-match triggers, often fragments ("refund
            // yet", "return shipping"): embedded, a fragment means little
            // more than its topic word and pulls every message that shares
            // it. They teach the n-grams but not the meaning: no embedding
            // in the joint model (a zero vector), no place in the head or
            // in closest-in-meaning evidence (BENCHMARKS.md).
            let sentences: Vec<usize> = (0..this.example_text.len())
                .filter(|&k| !this.example_keyword[k])
                .collect();
            let texts: Vec<&str> = sentences
                .iter()
                .map(|&k| this.example_text[k].as_str())
                .collect();
            let embedded = encoder
                .embed(&texts, true)
                .map_err(|e| ModelError(e.to_string()))?;
            let mut vecs = vec![Vec::new(); this.example_text.len()];
            for (&k, v) in sentences.iter().zip(embedded) {
                vecs[k] = v;
            }
            for v in vecs.iter_mut().filter(|v| v.is_empty()) {
                *v = vec![0.0; semantic::DIM];
            }
            let examples: Vec<(String, usize)> = this
                .example_text
                .iter()
                .map(|t| normalize::normalize(t))
                .zip(this.example_class.iter().copied())
                .collect();
            // Training, not embedding, is what a restart would wait for: the
            // fitted weights are kept by a hash of everything they depend on.
            let key = {
                let mut h = crate::util::hash::Fnv::new();
                // v4: the lexical features are numbered by document frequency, so
                // weights fitted before (v3, numbered by hash) do not fit.
                h.write(b"joint+head+names v4 no keywords");
                h.write(&encoder.fingerprint().to_le_bytes());
                h.write(
                    format!(
                        "{:?} {SEMANTIC_WEIGHT} {HEAD_WEIGHT} {:?}",
                        this.params,
                        semantic::HEAD_TRAINING
                    )
                    .as_bytes(),
                );
                for w in &this.class_weight {
                    h.write(&w.to_le_bytes());
                }
                // A phrase moved between examples and keywords trains
                // differently: the flag is part of the key.
                for ((t, c), kw) in examples.iter().zip(&this.example_keyword) {
                    h.write(t.as_bytes());
                    h.write(&[u8::from(*kw)]);
                    h.write(&(*c as u64).to_le_bytes());
                }
                h.finish()
            };
            let cached = encoder.trained(key);
            let (lex_fit, head_fit) = match cached {
                Some(mut parts) if parts.len() == 4 => {
                    let hb = parts.pop().unwrap_or_default();
                    let hw = parts.pop().unwrap_or_default();
                    let lb = parts.pop().unwrap_or_default();
                    let lw = parts.pop().unwrap_or_default();
                    (Some((lw, lb)), Some((hw, hb)))
                }
                _ => (None, None),
            };
            let fresh = lex_fit.is_none();
            this.lexical = lexical::Lexical::train_joint(
                &examples,
                this.class_weight.len(),
                &this.class_weight,
                this.params.clone(),
                Some((&vecs, SEMANTIC_WEIGHT)),
                lex_fit,
            );
            let head = match head_fit {
                Some((w, b)) => semantic::Head::from_parts(w, b, this.class_weight.len()),
                None => None,
            }
            .unwrap_or_else(|| {
                // Only when it is fitted: a start with cached weights needs
                // no copy of the sentences' embeddings.
                let head_vecs: Vec<Vec<f32>> = sentences.iter().map(|&k| vecs[k].clone()).collect();
                let head_class: Vec<usize> =
                    sentences.iter().map(|&k| this.example_class[k]).collect();
                semantic::Head::train(
                    &head_vecs,
                    &head_class,
                    this.class_weight.len(),
                    &this.class_weight,
                )
            });
            if fresh {
                let (lw, lb) = this.lexical.fitted();
                let (hw, hb) = head.fitted();
                encoder.store_trained(key, &[lw, lb, hw, hb]);
            }
            let neighbours = semantic::Neighbours::new(
                sentences
                    .iter()
                    .map(|&k| (k, this.example_class[k], vecs[k].as_slice())),
            );
            this.semantic = Some(Arc::new(Semantic {
                encoder: Arc::clone(encoder),
                neighbours,
                head,
            }));
            return Ok(this);
        }
        let _ = model;
        Ok(self)
    }

    /// Embeds `texts` in batches ahead of classifying them one by one
    /// (evaluations): the embeddings land in the model's cache.
    pub fn prefetch(&self, texts: &[&str]) {
        #[cfg(feature = "semantic")]
        if let Some(s) = &self.semantic {
            let _ = s.encoder.embed(texts, true);
        }
        let _ = texts;
    }

    /// The sentence embeddings of `texts` (unit length) from this set's
    /// semantic layer, as `classify` computes them; `None` when the layer
    /// is off or the model fails.
    pub fn embed(&self, texts: &[&str]) -> Option<Vec<Vec<f32>>> {
        #[cfg(feature = "semantic")]
        if let Some(s) = &self.semantic {
            return s.encoder.embed(texts, false).ok();
        }
        let _ = texts;
        None
    }

    /// The word vectors of `texts` (unit length): their dot product is the
    /// similarity of nearest-example evidence without the semantic layer.
    pub fn word_vectors(&self, texts: &[&str]) -> Vec<lexical::SparseVec> {
        texts
            .iter()
            .map(|t| self.lexical.vectorize(&normalize::normalize(t)).words)
            .collect()
    }

    /// Whether the semantic layer is on.
    pub fn has_model(&self) -> bool {
        #[cfg(feature = "semantic")]
        return self.semantic.is_some();
        #[cfg(not(feature = "semantic"))]
        false
    }

    /// Loads, validates and builds from a directory, with the semantic
    /// layer of `model`; a model that fails to embed is reported as an
    /// error of the directory. The intents' inline tests are decisions,
    /// so they are not run here: `conversation::Decide::load` does both.
    pub fn build(dir: &Path, model: &Model) -> Result<Classifier, LoadErrors> {
        let set = intents::load_dir(dir)?;
        Classifier::new_with(Arc::new(set), model).map_err(|e| {
            LoadErrors(vec![LoadError {
                path: dir.to_path_buf(),
                line: 0,
                col: 0,
                kind: ErrorKind::Model(e.0),
            }])
        })
    }

    pub fn intents(&self) -> &Arc<IntentSet> {
        &self.intents
    }

    /// Ranks every intent for `text`.
    pub fn classify(&self, text: &str) -> Ranking {
        let normalized = normalize::normalize(text);
        let mut v = self.lexical.vectorize(&normalized);
        let meaning = self.meaning(text);
        if let Some(e) = &meaning {
            self.lexical.append_dense(&mut v.features, e);
        }
        let cosines = self.cosines(meaning.as_ref());
        let mut probs = self.lexical.probabilities(&v);
        self.blend_meaning(meaning.as_ref(), cosines.as_deref(), &mut probs);
        let dense = meaning
            .as_ref()
            .and_then(|e| self.lexical.dense_probabilities(e));
        let hits = self.rules.matches(&self.intents, &normalized);
        // The coverage discount stands in for what a words-only model cannot
        // know; with the embedding in the model, unknown words are no
        // longer unknown in meaning.
        let discount = if meaning.is_some() {
            1.0
        } else {
            v.coverage.powf(self.fusion.coverage_power)
        };
        let n = self.intents.intents.len();
        let sem = |c: usize| dense.as_ref().map_or(0.0, |p| p[c]);
        let mut scored: Vec<(usize, f32, f32)> = (0..n)
            .map(|i| {
                let lex = probs[i] * discount;
                let rule = if hits.iter().any(|h| h.intent() == i) {
                    RULE_CONFIDENCE
                } else {
                    0.0
                };
                (i, 1.0 - (1.0 - lex) * (1.0 - rule), rule)
            })
            .collect();
        let keep = TOP_N.min(n);
        if keep > 0 && n > keep {
            scored.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            scored.truncate(keep);
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let candidates = scored
            .into_iter()
            .enumerate()
            .map(|(rank, (i, score, rule))| {
                let intent = &self.intents.intents[i];
                let mut evidence = Vec::new();
                let mut slots = Vec::new();
                for h in hits.iter().filter(|h| h.intent() == i) {
                    match h {
                        rules::RuleHit::Keyword { phrase, .. } => {
                            evidence.push(Evidence::Keyword {
                                phrase: phrase.clone(),
                            })
                        }
                        rules::RuleHit::Pattern {
                            index,
                            source,
                            captures,
                            ..
                        } => {
                            evidence.push(Evidence::Pattern {
                                index: *index,
                                source: source.clone(),
                            });
                            slots.extend(captures.iter().cloned());
                        }
                    }
                }
                if rank < EVIDENCE_N {
                    if let Some((e, sim)) = self.lexical.nearest(&v, i) {
                        evidence.push(Evidence::Example {
                            text: self.example_text[e].clone(),
                            similarity: sim,
                        });
                    }
                    if let Some((e, sim)) = self.nearest_meaning(cosines.as_deref(), i) {
                        evidence.push(Evidence::Meaning {
                            text: self.example_text[e].clone(),
                            similarity: sim,
                        });
                    }
                    for slot in &intent.slots {
                        if slots.iter().any(|(name, _)| name == &slot.name) {
                            continue;
                        }
                        if let Some(c) = slot.pattern.captures(text) {
                            let m = c.get(1).or_else(|| c.get(0));
                            if let Some(m) = m {
                                slots.push((slot.name.clone(), m.as_str().to_string()));
                            }
                        }
                    }
                }
                Candidate {
                    intent: intent.id.clone(),
                    score,
                    lexical: probs[i],
                    rule,
                    semantic: sem(i),
                    evidence,
                    slots,
                }
            })
            .collect();
        Ranking {
            frustration: frustration::detect_normalized(text, &normalized),
            normalized,
            candidates,
            out_of_scope: self.oos_class.map(|c| probs[c]).unwrap_or(0.0),
            coverage: v.coverage,
        }
    }

    /// The embedding of `text` (None when the layer is off, or the model
    /// failed on this text: the words alone decide then).
    #[cfg(feature = "semantic")]
    fn meaning(&self, text: &str) -> Option<Vec<f32>> {
        let s = self.semantic.as_ref()?;
        s.encoder.embed(&[text], false).ok()?.pop()
    }

    #[cfg(not(feature = "semantic"))]
    fn meaning(&self, _text: &str) -> Option<Vec<f32>> {
        None
    }

    /// The message's cosine to each example of meaning (None without the
    /// layer).
    #[cfg(feature = "semantic")]
    fn cosines(&self, e: Option<&Vec<f32>>) -> Option<Vec<f32>> {
        Some(self.semantic.as_ref()?.neighbours.cosines(e?))
    }

    #[cfg(not(feature = "semantic"))]
    fn cosines(&self, _e: Option<&Vec<f32>>) -> Option<Vec<f32>> {
        None
    }

    /// Averages the embedding-only head into the joint model's
    /// probabilities, then the closest examples' vote.
    #[cfg(feature = "semantic")]
    fn blend_meaning(&self, e: Option<&Vec<f32>>, cosines: Option<&[f32]>, probs: &mut [f32]) {
        let (Some(e), Some(cosines), Some(s)) = (e, cosines, self.semantic.as_ref()) else {
            return;
        };
        for (p, h) in probs.iter_mut().zip(s.head.probabilities(e)) {
            *p = (1.0 - HEAD_WEIGHT) * *p + HEAD_WEIGHT * h;
        }
        let Some((vote, closest)) = s
            .neighbours
            .vote(cosines, probs.len(), NEIGHBOUR_TEMPERATURE)
        else {
            return;
        };
        let (lo, hi) = NEIGHBOUR_CLOSE;
        let w = NEIGHBOUR_WEIGHT * ((closest - lo) / (hi - lo)).clamp(0.0, 1.0);
        for (p, v) in probs.iter_mut().zip(vote) {
            *p = (1.0 - w) * *p + w * v;
        }
    }

    #[cfg(not(feature = "semantic"))]
    fn blend_meaning(&self, _e: Option<&Vec<f32>>, _c: Option<&[f32]>, _probs: &mut [f32]) {}

    /// The example of class `i` closest in meaning: (index, cosine).
    #[cfg(feature = "semantic")]
    fn nearest_meaning(&self, cosines: Option<&[f32]>, i: usize) -> Option<(usize, f32)> {
        self.semantic.as_ref()?.neighbours.nearest(cosines?, i)
    }

    #[cfg(not(feature = "semantic"))]
    fn nearest_meaning(&self, _cosines: Option<&[f32]>, _i: usize) -> Option<(usize, f32)> {
        None
    }
}
