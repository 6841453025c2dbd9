//! Classification: a message in, a ranked and explained `Ranking` out, then a
//! `Decision`.
//!
//! Layers, in order of precedence:
//! 1. rules (`rules.rs`): keywords and patterns the admin wrote. A hit lifts
//!    its intent to at least `RULE_CONFIDENCE`;
//! 2. lexical (`lexical.rs`): a linear model over word and character n-grams
//!    trained on the examples, discounted by how much of the message the
//!    examples cover.
//!
//! Fusion is a noisy-or of the two, so a rule hit raises an intent but never
//! erases the lexical evidence of the others: two intents with strong
//! evidence stay close, and the policy asks which one was meant.

pub mod frustration;
pub mod lexical;
pub mod normalize;
pub mod policy;
pub mod rules;

use std::path::Path;
use std::sync::Arc;

use crate::intents::{self, ErrorKind, IntentSet, LoadError, LoadErrors};
pub use frustration::Frustration;
pub use lexical::Params;
pub use policy::{Decision, HandoffReason};

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

/// A ranking and what the policy made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ranking: Ranking,
    pub decision: Decision,
    /// One line saying why, for traces.
    pub why: String,
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
    /// Class index of the out-of-scope examples, if there are any.
    oos_class: Option<usize>,
    fusion: Fusion,
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
        for (i, intent) in intents.intents.iter().enumerate() {
            for e in &intent.examples {
                examples.push((normalize::normalize(e), i));
                example_text.push(e.clone());
            }
            for k in &intent.keywords {
                examples.push((k.phrase.clone(), i));
                example_text.push(k.phrase.clone());
            }
        }
        let oos_class = (!intents.out_of_scope.is_empty()).then_some(n);
        for e in &intents.out_of_scope {
            examples.push((normalize::normalize(e), n));
            example_text.push(e.clone());
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
        let lexical = lexical::Lexical::train(&examples, classes, &class_weight, params);
        Classifier {
            rules: rules::Rules::new(&intents),
            intents,
            lexical,
            example_text,
            oos_class,
            fusion,
        }
    }

    /// Loads, validates and builds from a directory, running the intents'
    /// inline tests: a test that fails is a load error at its line.
    pub fn load(dir: &Path) -> Result<Classifier, LoadErrors> {
        let set = intents::load_dir(dir)?;
        let classifier = Classifier::new(Arc::new(set));
        let errors: Vec<LoadError> = classifier
            .run_tests()
            .into_iter()
            .filter(|t| !t.passed)
            .map(|t| LoadError {
                path: t.location.path,
                line: t.location.line,
                col: t.location.col,
                kind: ErrorKind::TestFailed {
                    text: t.text,
                    got: t.got,
                },
            })
            .collect();
        if errors.is_empty() {
            Ok(classifier)
        } else {
            Err(LoadErrors(errors))
        }
    }

    pub fn intents(&self) -> &Arc<IntentSet> {
        &self.intents
    }

    /// Ranks every intent for `text`.
    pub fn classify(&self, text: &str) -> Ranking {
        let normalized = normalize::normalize(text);
        let v = self.lexical.vectorize(&normalized);
        let probs = self.lexical.probabilities(&v);
        let hits = self.rules.matches(&self.intents, &normalized);
        let discount = v.coverage.powf(self.fusion.coverage_power);
        let n = self.intents.intents.len();
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

    /// Ranks `text` and applies the decision policy.
    pub fn decide(&self, text: &str) -> Outcome {
        let ranking = self.classify(text);
        let (decision, why) = policy::decide(&ranking, &self.intents);
        Outcome {
            ranking,
            decision,
            why,
        }
    }

    /// Runs every intent's inline tests.
    pub fn run_tests(&self) -> Vec<TestResult> {
        let mut out = Vec::new();
        for intent in &self.intents.intents {
            for t in &intent.tests {
                let outcome = self.decide(&t.text);
                let got = match &outcome.decision {
                    Decision::Fallback => "fallback".to_string(),
                    d => match outcome.ranking.candidates.first() {
                        Some(c) => format!("{} ({})", c.intent, d.kind()),
                        None => d.kind().to_string(),
                    },
                };
                let passed = match &outcome.decision {
                    Decision::Answer { intent: i } => i == &intent.id,
                    Decision::Handoff {
                        reason: HandoffReason::Asked | HandoffReason::IntentAction,
                        intent: Some(i),
                    } => i == &intent.id,
                    _ => false,
                };
                out.push(TestResult {
                    intent: intent.id.clone(),
                    text: t.text.clone(),
                    location: t.location.clone(),
                    passed,
                    got,
                    outcome,
                });
            }
        }
        out
    }
}

/// One inline test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub intent: String,
    pub text: String,
    pub location: intents::Location,
    /// The bot answered (or handed off) with this intent, confidently.
    pub passed: bool,
    /// What it did instead, e.g. `refund_status (clarify)`.
    pub got: String,
    pub outcome: Outcome,
}
