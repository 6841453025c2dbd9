//! A small, explainable frustration detector. It adds up cues (a lexicon of
//! phrases, insults, shouting in capitals, runs of `!` or `?!`) and calls a
//! message negative at a score of 2 or more, so that one cue alone (a single
//! "!!!" of excitement, one capitalised word) is not enough. Every cue found
//! is reported, so an agent sees *why* a visitor was judged upset.
//!
//! A plain statement of how the visitor feels ("I'm really unhappy with
//! this", "it makes me so angry") is upset on its own, without insults,
//! capitals or "!": a clearly negative word of VADER's lexicon (MIT
//! licence; `lexicon/vader_negative.tsv`, derived by
//! `lexicon/derive_vader.py`, nothing added by hand) counts `STATED` when a
//! feeling frame ("i am", "i feel", "makes me", …, then at most a few
//! intensifiers) comes right before it. Outside such a frame the same words
//! describe things, not the visitor ("the zip is broken", "the wrong
//! size") and count nothing; BENCHMARKS.md has the false positives on the
//! shop's ordinary messages.

use std::collections::HashSet;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use crate::util::normalize::normalize;

/// Phrases that signal an upset visitor, matched whole-word on normalised
/// text, with their weight.
const LEXICON: &[(&str, f32)] = &[
    ("ridiculous", 2.0),
    ("unacceptable", 2.0),
    ("outrageous", 2.0),
    ("disgusting", 2.0),
    ("pathetic", 2.0),
    ("useless", 2.0),
    ("worst", 1.5),
    ("terrible", 1.5),
    ("horrible", 1.5),
    ("awful", 1.5),
    ("scam", 2.0),
    ("scammers", 2.0),
    ("rip off", 2.0),
    ("ripoff", 2.0),
    ("fraud", 1.5),
    ("this is a joke", 2.0),
    ("what a joke", 2.0),
    ("still waiting", 2.0),
    ("been waiting", 1.0),
    ("nobody replies", 2.0),
    ("nobody ever replies", 2.0),
    ("no one replies", 2.0),
    ("nobody answers", 2.0),
    ("no one answers", 2.0),
    ("nobody responds", 2.0),
    ("never replied", 1.5),
    ("fed up", 2.0),
    ("sick of", 1.5),
    ("sick and tired", 2.0),
    ("furious", 2.0),
    ("angry", 1.5),
    ("livid", 2.0),
    ("pissed", 2.0),
    ("annoyed", 1.0),
    ("frustrated", 1.5),
    ("frustrating", 1.5),
    ("disappointed", 1.0),
    ("waste of time", 2.0),
    ("waste of money", 2.0),
    ("never again", 1.5),
    ("never ordering", 1.5),
    ("never buying", 1.5),
    ("chargeback", 1.5),
    ("lawyer", 1.5),
    ("sue you", 2.0),
    ("report you", 1.5),
    ("stupid", 2.0),
    ("idiot", 2.0),
    ("idiots", 2.0),
    ("incompetent", 2.0),
    ("moron", 2.0),
    ("morons", 2.0),
    ("crap", 1.5),
    ("shit", 2.0),
    ("wtf", 2.0),
    ("damn", 1.0),
    ("hell", 1.0),
    ("fuck", 2.0),
    ("fucking", 2.0),
    ("bullshit", 2.0),
    ("sucks", 1.5),
];

/// Words that negate the cue after them.
const NEGATIONS: &[&str] = &["not", "isnt", "wasnt", "arent", "no", "never", "hardly"];

/// Words of delight that offset shouting and exclamation marks.
const POSITIVE: &[&str] = &[
    "love",
    "loved",
    "great",
    "amazing",
    "awesome",
    "thanks",
    "thank",
    "perfect",
    "excellent",
    "wonderful",
    "fantastic",
    "brilliant",
    "happy",
];

/// VADER's clearly negative words, one `word<TAB>valence` a line.
const VADER_NEGATIVE: &str = include_str!("lexicon/vader_negative.tsv");

/// Word sequences that open a statement of the visitor's own feeling
/// (normalised: "I'm" is "im"). "were" is not one: it is also the plain
/// past ("the items were damaged").
const FEELING_FRAMES: &[&[&str]] = &[
    &["i", "am"],
    &["im"],
    &["i", "m"],
    &["i", "feel"],
    &["i", "felt"],
    &["i", "was"],
    &["i", "have", "been"],
    &["ive", "been"],
    &["we", "are"],
    &["makes", "me"],
    &["made", "me"],
    &["making", "me"],
    &["left", "me"],
    &["leaves", "me"],
    &["feeling"],
];

/// Words that may stand between a frame and the feeling ("I'm *so very*
/// annoyed").
const INTENSIFIERS: &[&str] = &[
    "so",
    "very",
    "really",
    "extremely",
    "totally",
    "absolutely",
    "utterly",
    "deeply",
    "incredibly",
    "completely",
    "truly",
    "quite",
    "pretty",
    "super",
    "rather",
    "just",
    "getting",
    "becoming",
    "now",
    "honestly",
    "seriously",
    "thoroughly",
    "bitterly",
    "beyond",
];

/// Score of a stated negative feeling: enough on its own.
pub const STATED: f32 = 2.0;

/// Score at which a message counts as negative.
pub const NEGATIVE_AT: f32 = 2.0;

/// The verdict and the cues behind it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frustration {
    pub score: f32,
    /// Human-readable cues, e.g. `"ridiculous"`, `shouting`, `"!!!"`.
    pub cues: Vec<String>,
    pub negative: bool,
}

/// One automaton for the whole lexicon, built on first use; phrases are
/// padded with spaces so that matches are whole-word.
fn lexicon() -> &'static AhoCorasick {
    static AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    AUTOMATON.get_or_init(|| {
        AhoCorasick::new(LEXICON.iter().map(|(p, _)| format!(" {p} ")))
            .expect("the lexicon is a fixed list of plain phrases")
    })
}

/// The VADER subset as a set, built on first use.
fn vader_negative() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        VADER_NEGATIVE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .filter(|w| !w.is_empty())
            .collect()
    })
}

/// The first word of `words` that a feeling frame states, unnegated
/// ("i am so unhappy"; not "i am not unhappy").
fn stated_feeling<'a>(words: &[&'a str]) -> Option<&'a str> {
    let lexicon = vader_negative();
    for (i, w) in words.iter().enumerate() {
        if !lexicon.contains(w) {
            continue;
        }
        let mut j = i;
        while j > 0 && i - j < 3 && INTENSIFIERS.contains(&words[j - 1]) {
            j -= 1;
        }
        if FEELING_FRAMES.iter().any(|f| words[..j].ends_with(f)) {
            return Some(w);
        }
    }
    None
}

/// Judges one raw message.
pub fn detect(text: &str) -> Frustration {
    detect_normalized(text, &normalize(text))
}

/// Judges a raw message whose normalised form is already at hand.
pub fn detect_normalized(text: &str, normalized: &str) -> Frustration {
    let mut score = 0.0;
    let mut cues = Vec::new();
    let padded = format!(" {normalized} ");
    let mut seen = [false; LEXICON.len()];
    for m in lexicon().find_overlapping_iter(&padded) {
        let i = m.pattern().as_usize();
        // "not ridiculous", "isn't terrible": a negated cue is no cue.
        let before = padded[..m.start()].split(' ').rfind(|w| !w.is_empty());
        if before.is_some_and(|w| NEGATIONS.contains(&w)) {
            continue;
        }
        if !std::mem::replace(&mut seen[i], true) {
            let (phrase, weight) = LEXICON[i];
            score += weight;
            cues.push(format!("\"{phrase}\""));
        }
    }
    let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
    if let Some(word) = stated_feeling(&words) {
        // A hand-listed cue for the same word ("angry") was counted above:
        // the statement lifts it to `STATED`, it does not add twice.
        let counted = LEXICON
            .iter()
            .zip(seen)
            .find(|((p, _), seen)| *seen && *p == word)
            .map_or(0.0, |((_, w), _)| *w);
        score += STATED - counted;
        cues.push(format!("stated feeling \"{word}\""));
    }
    // Shouting: most letters upper case over enough letters to mean it, or
    // three words in capitals ("THIS IS A JOKE, nobody replies").
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    let capital_words = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 2 && w.chars().all(char::is_uppercase))
        .count();
    if (letters.len() >= 8 && upper * 10 >= letters.len() * 7) || capital_words >= 3 {
        score += 1.0;
        cues.push("shouting in capitals".to_string());
    }
    if text.contains("!!") || text.contains("?!") || text.contains("!?") {
        score += 1.0;
        cues.push("repeated \"!\"".to_string());
    }
    // Shouting and "!!!" are also how delight looks ("I LOVE IT!!!").
    if let Some(word) = normalized.split(' ').find(|w| POSITIVE.contains(w)) {
        score -= 1.5;
        cues.push(format!("but positive: \"{word}\""));
    }
    Frustration {
        score,
        negative: score >= NEGATIVE_AT,
        cues,
    }
}

#[cfg(test)]
mod tests {
    use super::detect;

    macro_rules! t {
        ($($input:expr => $negative:expr),* $(,)?) => {
            $(assert_eq!(detect($input).negative, $negative, "detect({:?}) = {:?}", $input, detect($input));)*
        };
    }

    #[test]
    fn table() {
        t! {
            "THIS IS A JOKE, nobody ever replies!!!" => true,
            "This is ridiculous" => true,
            "I'm still waiting for my refund" => true,
            "WHERE IS MY ORDER!!!" => true,
            "you are useless" => true,
            "How much is shipping?" => false,
            "Thanks so much!!!" => false,
            "WHERE IS MY ORDER" => false,
            "I love it, thanks" => false,
            "What the hell is going on, this is a scam" => true,
            "OK" => false,
            "I ordered the XL not the M" => false,
            "what a joke, nobody answers" => true,
            "I LOVE YOUR SHOP!!!" => false,
            "not ridiculous at all, thanks" => false,
            "this is not acceptable, it's ridiculous" => true,
            "" => false,
        }
    }

    #[test]
    fn cues_explain_the_verdict() {
        let f = detect("THIS IS A JOKE, nobody ever replies!!!");
        assert!(
            f.cues.iter().any(|c| c.contains("shouting")),
            "{:?}",
            f.cues
        );
        assert!(f.cues.iter().any(|c| c.contains("nobody ever replies")));
    }
}
