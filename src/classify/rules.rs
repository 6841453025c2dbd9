//! The rules layer: every intent's keywords in ONE aho-corasick automaton
//! (whole-word matches over normalised text) and every pattern compiled once,
//! pre-filtered by a `RegexSet` so a message pays for captures only where a
//! pattern matched.

use aho_corasick::AhoCorasick;
use regex::RegexSet;

use crate::intents::IntentSet;

/// What a rule matched, for one intent.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleHit {
    Keyword {
        intent: usize,
        phrase: String,
    },
    Pattern {
        intent: usize,
        index: usize,
        source: String,
        /// Named groups that matched: (slot name, value).
        captures: Vec<(String, String)>,
    },
}

impl RuleHit {
    pub fn intent(&self) -> usize {
        match self {
            RuleHit::Keyword { intent, .. } | RuleHit::Pattern { intent, .. } => *intent,
        }
    }
}

/// Compiled rules of an intent set.
#[derive(Debug, Clone)]
pub struct Rules {
    automaton: Option<AhoCorasick>,
    /// For automaton pattern i: (intent index, normalised phrase).
    keyword_owner: Vec<(usize, String)>,
    set: RegexSet,
    /// For set pattern i: (intent index, pattern index within the intent).
    pattern_owner: Vec<(usize, usize)>,
}

impl Rules {
    pub fn new(intents: &IntentSet) -> Rules {
        let mut phrases = Vec::new();
        let mut keyword_owner = Vec::new();
        let mut sources = Vec::new();
        let mut pattern_owner = Vec::new();
        for (i, intent) in intents.intents.iter().enumerate() {
            for k in &intent.keywords {
                // Padding with spaces makes every match whole-word.
                phrases.push(format!(" {} ", k.phrase));
                keyword_owner.push((i, k.phrase.clone()));
            }
            for (j, p) in intent.patterns.iter().enumerate() {
                sources.push(p.source.clone());
                pattern_owner.push((i, j));
            }
        }
        let automaton = if phrases.is_empty() {
            None
        } else {
            // Phrases were normalised at load; building cannot fail for them.
            AhoCorasick::new(&phrases).ok()
        };
        // Every source compiled on its own at load, so the set compiles too.
        let set = RegexSet::new(&sources).unwrap_or_else(|_| RegexSet::empty());
        Rules {
            automaton,
            keyword_owner,
            set,
            pattern_owner,
        }
    }

    /// All rule hits in a normalised message.
    pub fn matches(&self, intents: &IntentSet, normalized: &str) -> Vec<RuleHit> {
        let mut hits = Vec::new();
        if let Some(ac) = &self.automaton {
            let padded = format!(" {normalized} ");
            let mut seen = vec![false; self.keyword_owner.len()];
            for m in ac.find_overlapping_iter(&padded) {
                // A phrase repeated in a message is one piece of evidence.
                let k = m.pattern().as_usize();
                if std::mem::replace(&mut seen[k], true) {
                    continue;
                }
                let (intent, phrase) = &self.keyword_owner[k];
                hits.push(RuleHit::Keyword {
                    intent: *intent,
                    phrase: phrase.clone(),
                });
            }
        }
        for idx in self.set.matches(normalized).iter() {
            let (intent, j) = self.pattern_owner[idx];
            let pattern = &intents.intents[intent].patterns[j];
            let mut captures = Vec::new();
            if let Some(c) = pattern.regex.captures(normalized) {
                for name in pattern.regex.capture_names().flatten() {
                    if let Some(m) = c.name(name) {
                        captures.push((name.to_string(), m.as_str().to_string()));
                    }
                }
            }
            hits.push(RuleHit::Pattern {
                intent,
                index: j,
                source: pattern.source.clone(),
                captures,
            });
        }
        hits
    }
}
