//! The lexical layer: how much a message looks like each intent's examples,
//! with no model to download.
//!
//! Features are TF-IDF weights (sublinear tf, smoothed idf) of word 1-2-grams
//! and of character 2-5-grams taken inside word boundaries, the latter being
//! what makes the layer robust to typos and inflections. Each block is
//! L2-normalised on its own. A multinomial logistic regression over those
//! features is trained when the intent set loads (plain SGD, a few epochs,
//! deterministic); its softmax gives each intent a probability, and known
//! out-of-scope examples form one more class. The choice over nearest-example
//! scoring was made by measurement (see BENCHMARKS.md and README).
//!
//! A linear model ignores words it has never seen, which is how other bots
//! end up answering "do you ship to mars" with full confidence. So the layer
//! also reports `coverage`: the share of the message's word weight (by idf)
//! that the examples know. Fusion discounts confidence by it.
//!
//! A typo is not an unknown word. A word the examples never used that is
//! one typo (`util::typo::edit`: a letter left out, added or changed, or two
//! neighbours swapped) from a word they did is read as that word: coverage
//! counts it as known, and the known word's features (its word, its
//! bigrams with the neighbours, its character n-grams) join the misspelt
//! word's at half weight, so "tak" scores as "take" and not only as its
//! few shared n-grams. A long word (5 letters for a letter left out or
//! added, 6 for one changed or swapped) is read as any known word; a short
//! one ("lnog", "dose", "sise", "ned": from 3 letters, 4 for a changed
//! letter, never with a letter added) only as a word that one of the
//! message's 3 likely intents (the top classes on the message as written,
//! the long readings included) uses,
//! since nearly every short word is a letter from some known word, and an
//! ordinary word of another topic ("mars", "ford") must stay unknown.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::util::hash::Fnv;
use crate::util::prefetch;
use crate::util::typo::{self, Edit};

/// Knobs of the lexical layer; the defaults were chosen on BANKING77 and
/// CLINC150 (see BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Params {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty per example.
    pub l2: f32,
    /// Weight of the word block against the character block.
    pub word_weight: f32,
    pub char_weight: f32,
    /// A character n-gram is a feature only if this many examples have it.
    pub char_min_df: u32,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            epochs: 20,
            learning_rate: 1.5,
            l2: 1e-5,
            word_weight: 1.5,
            char_weight: 1.5,
            char_min_df: 2,
            seed: 0x5eed,
        }
    }
}

/// A sparse, normalised feature vector: (feature index, weight), sorted.
pub type SparseVec = Vec<(u32, f32)>;

/// A message turned into features.
#[derive(Debug, Clone, Default)]
pub struct Vectorized {
    pub features: SparseVec,
    /// Word-block features only, for nearest-example evidence.
    pub words: SparseVec,
    /// Share of the message's word weight that the vocabulary knows, in [0, 1].
    pub coverage: f32,
}

/// Hashes of u64 keys that are already well mixed: pass them through.
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

const WORD: u8 = 1;
const BIGRAM: u8 = 2;
const CHAR: u8 = 3;

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Feature keys of a normalised text: (word keys, char keys), unsorted.
/// Unigram keys are odd and bigram keys even, so coverage can tell them
/// apart without a third list; bit 1 of a unigram key marks a value (a word
/// with digits), which coverage leaves out.
fn keys(normalized: &str, words_out: &mut Vec<u64>, chars_out: &mut Vec<u64>) {
    let mut prev: Option<&str> = None;
    for w in normalized.split(' ').filter(|w| !w.is_empty()) {
        words_out.push(word_key(w));
        if let Some(p) = prev {
            let mut h = Fnv::new();
            h.write(&[BIGRAM]);
            h.write(p.as_bytes());
            h.write(b" ");
            h.write(w.as_bytes());
            words_out.push(mix(h.finish()) & !1);
        }
        prev = Some(w);
        // Character n-grams of " word ", n = 2..=5, as sklearn's char_wb.
        let mut bounds: [usize; 64] = [0; 64];
        let padded_len;
        {
            let mut n = 0;
            bounds[n] = 0; // the leading space, 1 byte
            n += 1;
            let mut off = 1;
            for c in w.chars() {
                if n >= 62 {
                    break;
                }
                bounds[n] = off;
                off += c.len_utf8();
                n += 1;
            }
            bounds[n] = off; // the trailing space
            padded_len = n + 1;
            bounds[padded_len] = off + 1;
        }
        let bytes_of = |i: usize, j: usize, buf: &mut Fnv| {
            // Bytes of padded chars i..j, with virtual spaces at both ends.
            for k in i..j {
                if k == 0 || k == padded_len - 1 {
                    buf.write(b" ");
                } else {
                    let s = bounds[k] - 1;
                    let e = bounds[k + 1] - 1;
                    buf.write(&w.as_bytes()[s..e]);
                }
            }
        };
        for i in 0..padded_len {
            let mut h = Fnv::new();
            h.write(&[CHAR]);
            for n in 1..=5usize {
                if i + n > padded_len {
                    break;
                }
                bytes_of(i + n - 1, i + n, &mut h);
                if n >= 2 {
                    chars_out.push(mix(h.finish()));
                }
            }
        }
    }
}

/// The unigram key of a word. Unigram keys are odd; a word with a digit in
/// it (an order number, a size) is a value, not vocabulary: its key is also
/// marked (bit 1) so that coverage ignores it.
fn word_key(w: &str) -> u64 {
    let mut h = Fnv::new();
    h.write(&[WORD]);
    h.write(w.as_bytes());
    let value = w.bytes().any(|b| b.is_ascii_digit());
    (mix(h.finish()) & !2) | 1 | if value { 2 } else { 0 }
}

/// Shortest word, known or not, that `near_miss` looks at: below it a
/// typo cannot be told from another word at all.
const NEAR_MISS_MIN_CHARS: usize = 3;
/// Shortest unknown word that may be any known word with a letter added or
/// left out ("polcy", "shooes"); below it nearly every word is a letter
/// away from another ("mars", "maps"; on the shop's held-out set, 4 made
/// "do you ship to mars" a shipping question), so a shorter one must also
/// be a word of the likely intents (`NEAR_MISS_CONTEXT`).
const NEAR_MISS_INDEL_CHARS: usize = 5;
/// Shortest unknown word that may be any known word with a letter changed
/// or two swapped ("retrun"): a changed letter in a short word is often
/// another word ("tyres", "types").
const NEAR_MISS_CHANGE_CHARS: usize = 6;
/// Shortest unknown word that may be a known word with a letter changed,
/// if the likely intents use it ("sise"): a changed letter of a 3-letter
/// word is nearly always another word ("fur", "for").
const NEAR_MISS_SHORT_CHANGE_CHARS: usize = 4;

/// How many of the message's likely intents (the top classes on the
/// message as written; the misspelt words' own n-grams count there too) a
/// short near-miss is read in: the known word must be a word of
/// one of them. Few, so that an unknown word of another topic ("mars") is
/// not read as a word of a topic the message is not about.
const NEAR_MISS_CONTEXT: usize = 3;

/// How many features ahead the fit asks for a weight row. On BANKING77
/// 4, 8 and 16 were alike, and asking ahead took a fifth off the fit.
const PREFETCH_AHEAD: usize = 8;

/// `f32`s in a 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// Weight of the features of the word a near-miss is read as, against the
/// misspelt word's own (whose character n-grams stay): a reading is a
/// guess, and at full weight a wrong one answered "how do i chek wich sise
/// i ned" as an account question (0.61) where at half it falls back; on
/// CLINC150 val half is as good as full (see BENCHMARKS.md).
const NEAR_MISS_WEIGHT: f32 = 0.5;

/// The variant key of `w` whole.
fn whole_key(w: &str) -> u64 {
    variant_key(w, None)
}

/// The key of `w` with the character at `skip` left out (`None`: whole),
/// in a space of its own (no feature key collides by design).
fn variant_key(w: &str, skip: Option<usize>) -> u64 {
    let mut h = Fnv::new();
    h.write(b"near");
    for (i, c) in w.char_indices() {
        if Some(i) != skip {
            let mut b = [0u8; 4];
            h.write(c.encode_utf8(&mut b).as_bytes());
        }
    }
    mix(h.finish())
}

/// Calls `f` with the key of each one-letter deletion of `w` (the
/// symmetric-delete scheme of spelling correctors: with the whole words'
/// keys, two words one typo apart always share a key; `typo::edit` then
/// says whether they are, since a letter moved further also shares one).
fn deletions(w: &str, mut f: impl FnMut(u64)) {
    for (i, _) in w.char_indices() {
        f(variant_key(w, Some(i)));
    }
}

/// Whether `word`, unknown, may be read as a known word it is one `edit`
/// from without asking the message's context: long enough that the typo
/// is rarely another word.
fn trusted_alone(word_chars: usize, edit: Edit) -> bool {
    match edit {
        Edit::LeftOut | Edit::Added => word_chars >= NEAR_MISS_INDEL_CHARS,
        Edit::Changed | Edit::Swapped => word_chars >= NEAR_MISS_CHANGE_CHARS,
    }
}

/// Whether `word` may be read as a known word it is one `edit` from if
/// the likely intents use that word.
fn trusted_in_context(word_chars: usize, edit: Edit) -> bool {
    match edit {
        Edit::LeftOut | Edit::Swapped => word_chars >= NEAR_MISS_MIN_CHARS,
        Edit::Changed => word_chars >= NEAR_MISS_SHORT_CHANGE_CHARS,
        // A short word with a letter more is nearly always another word
        // ("ford", "for"; "cars", "card"), and a typo seldom adds one.
        Edit::Added => trusted_alone(word_chars, edit),
    }
}

/// (feature key, count) pairs, sorted by key.
type KeyCounts = Vec<(u64, u32)>;

/// Sorts keys and counts them: (key, count).
fn counts(keys: &mut [u64]) -> Vec<(u64, u32)> {
    keys.sort_unstable();
    let mut out: Vec<(u64, u32)> = Vec::with_capacity(keys.len());
    for &k in keys.iter() {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

/// The trained lexical layer.
#[derive(Debug, Clone)]
pub struct Lexical {
    vocab: KeyMap<u32>,
    /// Per feature: smoothed idf.
    idf: Vec<f32>,
    /// idf of a word the examples never used: the highest possible.
    unseen_idf: f32,
    n_classes: usize,
    /// Row-major: feature f's class weights are `weights[f*K..(f+1)*K]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Nearest-example index: for (class, word feature), the examples of
    /// the class that have the feature, as (slot within the class, weight).
    /// A message's ~15 word features then cost ~15 lookups per class, where
    /// merging sparse vectors cost a mispredicted branch per entry.
    postings: KeyMap<Vec<(u32, f32)>>,
    /// Width of the dense (embedding) block after the n-gram features; 0
    /// without the semantic layer.
    dense_dim: usize,
    dense_weight: f32,
    /// Training-example index of each slot, grouped by class: class `c`'s
    /// slots are `class_order[class_start[c]..class_start[c + 1]]`.
    class_order: Vec<u32>,
    class_start: Vec<u32>,
    params: Params,
    /// Every known word of `NEAR_MISS_MIN_CHARS` or more (no digits), by
    /// id: what a near-miss is read as.
    near_words: Vec<Box<str>>,
    /// `whole_key` of each of `near_words` -> its id.
    near_whole: KeyMap<u32>,
    /// (key of a one-letter deletion of a known word, its id), sorted: an
    /// unknown word whose whole key or a deletion's key is here may be one
    /// typo from that word (`near_miss` checks with `typo::edit`).
    near_deleted: Vec<(u64, u32)>,
}

/// A near-miss found in a message: the unknown word at `position` (in
/// words) read as the known word `id`.
#[derive(Debug, Clone, Copy)]
struct Reading {
    position: usize,
    id: u32,
}

impl Lexical {
    /// Trains on `(normalised text, class)` pairs; classes are `0..n_classes`.
    /// `class_weight` scales each class's examples in the loss (the
    /// out-of-scope class is weighted to count like an average intent).
    pub fn train(
        examples: &[(String, usize)],
        n_classes: usize,
        class_weight: &[f32],
        params: Params,
    ) -> Lexical {
        Lexical::train_joint(examples, n_classes, class_weight, params, None, None)
    }

    /// `train` with dense features beside the n-grams: each example's
    /// sentence embedding, scaled by `weight` (the semantic layer), so one
    /// regression learns how much to trust either kind of evidence. With
    /// `fitted` weights and biases (from a cache) of the right shape, the fit
    /// is skipped.
    pub fn train_joint(
        examples: &[(String, usize)],
        n_classes: usize,
        class_weight: &[f32],
        params: Params,
        dense: Option<(&[Vec<f32>], f32)>,
        fitted: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Lexical {
        // Document frequencies, per block.
        let mut df: KeyMap<(u32, bool)> = KeyMap::default();
        let mut per_example: Vec<(KeyCounts, KeyCounts)> = Vec::with_capacity(examples.len());
        let (mut wk, mut ck) = (Vec::new(), Vec::new());
        for (text, _) in examples {
            wk.clear();
            ck.clear();
            keys(text, &mut wk, &mut ck);
            let w = counts(&mut wk);
            let c = counts(&mut ck);
            for (k, _) in &w {
                df.entry(*k).or_insert((0, true)).0 += 1;
            }
            for (k, _) in &c {
                df.entry(*k).or_insert((0, false)).0 += 1;
            }
            per_example.push((w, c));
        }
        let n = examples.len() as f32;
        let mut vocab = KeyMap::default();
        let mut idf = Vec::new();
        let mut sorted: Vec<(u64, (u32, bool))> = df.into_iter().collect();
        // Common features first: the rows the fit and every message touch
        // most sit together in memory, which is most of the fit's speed.
        sorted.sort_unstable_by_key(|&(k, (d, _))| (std::cmp::Reverse(d), k));
        for (k, (d, word)) in sorted {
            if !word && d < params.char_min_df {
                continue;
            }
            vocab.insert(k, idf.len() as u32);
            idf.push(((1.0 + n) / (1.0 + d as f32)).ln() + 1.0);
        }
        let unseen_idf = (1.0 + n).ln() + 1.0;
        let mut lex = Lexical {
            vocab,
            idf,
            unseen_idf,
            n_classes,
            weights: Vec::new(),
            bias: vec![0.0; n_classes],
            postings: KeyMap::default(),
            dense_dim: 0,
            dense_weight: 0.0,
            class_order: Vec::with_capacity(examples.len()),
            class_start: Vec::with_capacity(n_classes + 1),
            params,
            near_words: Vec::new(),
            near_whole: KeyMap::default(),
            near_deleted: Vec::new(),
        };
        for (text, _) in examples {
            for w in text.split(' ') {
                if w.chars().count() < NEAR_MISS_MIN_CHARS || w.bytes().any(|b| b.is_ascii_digit())
                {
                    continue;
                }
                let id = lex.near_words.len() as u32;
                if let std::collections::hash_map::Entry::Vacant(e) =
                    lex.near_whole.entry(whole_key(w))
                {
                    e.insert(id);
                    lex.near_words.push(w.into());
                    deletions(w, |k| lex.near_deleted.push((k, id)));
                }
            }
        }
        lex.near_deleted.sort_unstable();
        lex.near_deleted.dedup();
        let mut data = Vec::with_capacity(examples.len());
        let mut words = Vec::with_capacity(examples.len());
        for ((w, c), (_, class)) in per_example.into_iter().zip(examples) {
            let v = lex.weigh(&w, &c, &[], &[], &[]);
            words.push(v.words);
            data.push((
                v.features,
                *class,
                class_weight.get(*class).copied().unwrap_or(1.0),
            ));
        }
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.sort_by_key(|&i| examples[i].1);
        let mut next = 0;
        for c in 0..n_classes {
            lex.class_start.push(lex.class_order.len() as u32);
            while next < order.len() && examples[order[next]].1 == c {
                let i = order[next];
                let slot = lex.class_order.len() as u32 - lex.class_start[c];
                for &(f, x) in &words[i] {
                    lex.postings
                        .entry(posting_key(c, f))
                        .or_default()
                        .push((slot, x));
                }
                lex.class_order.push(i as u32);
                next += 1;
            }
        }
        lex.class_start.push(lex.class_order.len() as u32);
        if let Some((vecs, weight)) = dense {
            lex.dense_dim = vecs.first().map_or(0, Vec::len);
            lex.dense_weight = weight;
            for ((features, _, _), e) in data.iter_mut().zip(vecs) {
                lex.append_dense(features, e);
            }
        }
        let size = (lex.idf.len() + lex.dense_dim) * n_classes;
        match fitted {
            Some((w, b)) if w.len() == size && b.len() == n_classes => {
                lex.weights = w;
                lex.bias = b;
            }
            _ => {
                lex.weights = vec![0.0; size];
                lex.fit(&data);
            }
        }
        lex
    }

    /// The fitted weights and biases, to cache.
    pub fn fitted(&self) -> (Vec<f32>, Vec<f32>) {
        (self.weights.clone(), self.bias.clone())
    }

    /// Adds a message's embedding to its features (joint models only).
    pub fn append_dense(&self, features: &mut SparseVec, e: &[f32]) {
        if self.dense_dim == 0 || e.len() != self.dense_dim {
            return;
        }
        let base = self.idf.len() as u32;
        features.extend(
            e.iter()
                .enumerate()
                .map(|(d, x)| (base + d as u32, x * self.dense_weight)),
        );
    }

    /// Class probabilities from the embedding's features alone: what the
    /// meaning says, for traces.
    pub fn dense_probabilities(&self, e: &[f32]) -> Option<Vec<f32>> {
        if self.dense_dim == 0 || e.len() != self.dense_dim {
            return None;
        }
        let mut s = self.bias.clone();
        let mut x = Vec::with_capacity(self.dense_dim);
        self.append_dense(&mut x, e);
        self.add_scores(&x, &mut s);
        softmax(&mut s);
        Some(s)
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of features in the vocabulary.
    pub fn n_features(&self) -> usize {
        self.idf.len()
    }

    /// Features of a normalised text.
    pub fn vectorize(&self, normalized: &str) -> Vectorized {
        let (mut wk, mut ck) = (Vec::new(), Vec::new());
        keys(normalized, &mut wk, &mut ck);
        let w = counts(&mut wk);
        let c = counts(&mut ck);
        // Unknown words one typo from a known word: those trusted alone are
        // read at once; the others wait for the message's likely intents.
        let mut read: Vec<Reading> = Vec::new();
        // (position, the known words it may be read as in context)
        let mut pending: Vec<(usize, Vec<u32>)> = Vec::new();
        for (position, word) in normalized.split(' ').enumerate() {
            let n = word.chars().count();
            if n < NEAR_MISS_MIN_CHARS {
                continue;
            }
            let k = word_key(word);
            if k & 2 != 0 || self.vocab.contains_key(&k) {
                continue;
            }
            let mut alone: Option<u32> = None;
            let mut in_context: Vec<u32> = Vec::new();
            self.near_miss(word, |id, edit| {
                if trusted_alone(n, edit) {
                    alone = Some(alone.map_or(id, |a| self.more_common(a, id)));
                } else if trusted_in_context(n, edit) {
                    in_context.push(id);
                }
            });
            match alone {
                Some(id) => read.push(Reading { position, id }),
                None if !in_context.is_empty() => pending.push((position, in_context)),
                None => {}
            }
        }
        if read.is_empty() && pending.is_empty() {
            return self.weigh(&w, &c, &[], &[], &[]);
        }
        if !pending.is_empty() {
            // The likely intents: the top few classes on what is known so
            // far. A short word is read only as a word one of them uses.
            let first = self.with_readings(normalized, &w, &c, &read);
            let mut s = self.bias.clone();
            self.add_scores(&first.features, &mut s);
            let mut top: Vec<usize> = (0..s.len()).collect();
            top.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
            top.truncate(NEAR_MISS_CONTEXT);
            for (position, candidates) in pending {
                let mut best: Option<(usize, u32)> = None;
                for id in candidates {
                    let Some(&f) = self.vocab.get(&word_key(&self.near_words[id as usize])) else {
                        continue;
                    };
                    let Some(rank) = top
                        .iter()
                        .position(|&class| self.postings.contains_key(&posting_key(class, f)))
                    else {
                        continue;
                    };
                    best = match best {
                        Some((r, b)) if r < rank => Some((r, b)),
                        Some((r, b)) if r == rank => Some((r, self.more_common(b, id))),
                        _ => Some((rank, id)),
                    };
                }
                if let Some((_, id)) = best {
                    read.push(Reading { position, id });
                }
            }
            if read.is_empty() {
                return first;
            }
        }
        self.with_readings(normalized, &w, &c, &read)
    }

    /// Of two known words, the one more examples use.
    fn more_common(&self, a: u32, b: u32) -> u32 {
        let idf = |id: u32| {
            self.vocab
                .get(&word_key(&self.near_words[id as usize]))
                .map_or(f32::INFINITY, |&f| self.idf[f as usize])
        };
        if idf(b) < idf(a) {
            b
        } else {
            a
        }
    }

    /// Calls `f` with each known word one typo from `word`, and the typo.
    fn near_miss(&self, word: &str, mut f: impl FnMut(u32, Edit)) {
        let mut seen: [u32; 8] = [u32::MAX; 8];
        let mut n_seen = 0;
        let mut check = |id: u32| {
            if seen[..n_seen].contains(&id) {
                return;
            }
            if n_seen < seen.len() {
                seen[n_seen] = id;
                n_seen += 1;
            }
            if let Some(edit) = typo::edit(&self.near_words[id as usize], word) {
                f(id, edit);
            }
        };
        // A letter left out: the word is a known word's deletion.
        self.deleted(whole_key(word), &mut check);
        deletions(word, |k| {
            // A letter added: a deletion of the word is a known word.
            if let Some(&id) = self.near_whole.get(&k) {
                check(id);
            }
            // A letter changed or two swapped: both lose one to the same.
            self.deleted(k, &mut check);
        });
    }

    /// Calls `f` with each known word that has a deletion keyed `k`.
    fn deleted(&self, k: u64, f: &mut impl FnMut(u32)) {
        let start = self.near_deleted.partition_point(|&(x, _)| x < k);
        for &(x, id) in &self.near_deleted[start..] {
            if x != k {
                break;
            }
            f(id);
        }
    }

    /// Weighs the message with its near-misses read as the known words:
    /// the known word's features (its word, its bigrams with the
    /// neighbours, its character n-grams) are added beside the misspelt
    /// word's at `NEAR_MISS_WEIGHT`, and coverage counts the misspelt word
    /// as known.
    fn with_readings(
        &self,
        normalized: &str,
        w: &[(u64, u32)],
        c: &[(u64, u32)],
        read: &[Reading],
    ) -> Vectorized {
        if read.is_empty() {
            return self.weigh(w, c, &[], &[], &[]);
        }
        let mut corrected = String::with_capacity(normalized.len() + 8);
        let mut near = Vec::with_capacity(read.len());
        for (position, word) in normalized.split(' ').enumerate() {
            if !corrected.is_empty() {
                corrected.push(' ');
            }
            match read.iter().find(|r| r.position == position) {
                Some(r) => {
                    near.push(word_key(word));
                    corrected.push_str(&self.near_words[r.id as usize]);
                }
                None => corrected.push_str(word),
            }
        }
        let (mut wk, mut ck) = (Vec::new(), Vec::new());
        keys(&corrected, &mut wk, &mut ck);
        let alpha = NEAR_MISS_WEIGHT;
        let extra = |new: Vec<(u64, u32)>, old: &[(u64, u32)]| -> Vec<(u64, f32)> {
            new.into_iter()
                .filter(|(k, _)| old.binary_search_by_key(k, |&(o, _)| o).is_err())
                .map(|(k, tf)| (k, alpha * (1.0 + (tf as f32).ln())))
                .collect()
        };
        let extra_w = extra(counts(&mut wk), w);
        let extra_c = extra(counts(&mut ck), c);
        self.weigh(w, c, &near, &extra_w, &extra_c)
    }

    /// Weighs keys into features; unigram keys in `near` are near-misses of
    /// known words, counted as known by coverage; `extra_w` and `extra_c`
    /// are the word and character keys of the words they are read as, with
    /// their tf weights, which coverage leaves out.
    fn weigh(
        &self,
        w: &[(u64, u32)],
        c: &[(u64, u32)],
        near: &[u64],
        extra_w: &[(u64, f32)],
        extra_c: &[(u64, f32)],
    ) -> Vectorized {
        let mut words: SparseVec = Vec::with_capacity(w.len() + extra_w.len());
        let mut known2 = 0.0f32;
        let mut unknown2 = 0.0f32;
        for &(k, tf) in w {
            let tfw = 1.0 + (tf as f32).ln();
            // Coverage counts single words only: a bigram is nearly always
            // new in a small intent set, and would say little.
            let unigram = k & 1 == 1 && k & 2 == 0;
            match self.vocab.get(&k) {
                Some(&f) => {
                    let x = tfw * self.idf[f as usize];
                    if unigram {
                        known2 += x * x;
                    }
                    words.push((f, x));
                }
                None if unigram => {
                    let x = tfw * self.unseen_idf;
                    if near.contains(&k) {
                        known2 += x * x;
                    } else {
                        unknown2 += x * x;
                    }
                }
                None => {}
            }
        }
        for &(k, tfw) in extra_w {
            if let Some(&f) = self.vocab.get(&k) {
                words.push((f, tfw * self.idf[f as usize]));
            }
        }
        let mut chars: SparseVec = Vec::with_capacity(c.len() + extra_c.len());
        for &(k, tf) in c {
            if let Some(&f) = self.vocab.get(&k) {
                chars.push((f, (1.0 + (tf as f32).ln()) * self.idf[f as usize]));
            }
        }
        for &(k, tfw) in extra_c {
            if let Some(&f) = self.vocab.get(&k) {
                chars.push((f, tfw * self.idf[f as usize]));
            }
        }
        let total = known2 + unknown2;
        let coverage = if total > 0.0 { known2 / total } else { 0.0 };
        scale_to(&mut words, 1.0);
        scale_to(&mut chars, 1.0);
        let mut features: SparseVec = Vec::with_capacity(words.len() + chars.len());
        features.extend(words.iter().map(|&(f, x)| (f, x * self.params.word_weight)));
        features.extend(chars.iter().map(|&(f, x)| (f, x * self.params.char_weight)));
        features.sort_unstable_by_key(|&(f, _)| f);
        words.sort_unstable_by_key(|&(f, _)| f);
        Vectorized {
            features,
            words,
            coverage,
        }
    }

    /// Class probabilities (softmax) for a vectorised message.
    pub fn probabilities(&self, v: &Vectorized) -> Vec<f32> {
        let mut s = self.bias.clone();
        self.add_scores(&v.features, &mut s);
        softmax(&mut s);
        s
    }

    fn add_scores(&self, x: &[(u32, f32)], s: &mut [f32]) {
        let k = self.n_classes;
        for &(f, v) in x {
            let row = &self.weights[f as usize * k..(f as usize + 1) * k];
            for (s, w) in s.iter_mut().zip(row) {
                *s += v * w;
            }
        }
    }

    /// Multinomial logistic regression by SGD with a linearly decaying step
    /// and L2 kept as a lazy scale factor (so a step touches only the
    /// message's features). Deterministic for a given seed.
    fn fit(&mut self, data: &[(SparseVec, usize, f32)]) {
        let k = self.n_classes;
        if data.is_empty() || k == 0 {
            return;
        }
        // The fit is bound by memory: each example reads and writes a row
        // of `k` weights per feature, rows scattered over tens of megabytes
        // (the common features' rows come first, see `train_joint`). So it
        // asks for the next features' rows ahead of use, and changes only
        // the weights of classes whose gradient is not negligible.
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = self.params.seed | 1;
        let total = (self.params.epochs * data.len()) as f32;
        let mut step = 0f32;
        let mut scale = 1.0f32; // true weights = scale * stored weights
        let mut s = vec![0.0f32; k];
        let mut active: Vec<(usize, f32)> = Vec::with_capacity(k);
        let mut masked = vec![0.0f32; k];
        for _ in 0..self.params.epochs {
            for i in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for &i in &order {
                let (x, y, weight) = &data[i];
                let lr = self.params.learning_rate * (1.0 - step / total).max(0.01);
                step += 1.0;
                s.copy_from_slice(&self.bias);
                for (j, &(f, v)) in x.iter().enumerate() {
                    if let Some(&(ahead, _)) = x.get(j + PREFETCH_AHEAD) {
                        let row = &self.weights[ahead as usize * k..(ahead as usize + 1) * k];
                        for w in row.iter().step_by(LINE_FLOATS).chain(row.last()) {
                            prefetch::read(w);
                        }
                    }
                    let row = &self.weights[f as usize * k..(f as usize + 1) * k];
                    for (s, w) in s.iter_mut().zip(row) {
                        *s += v * scale * w;
                    }
                }
                softmax(&mut s);
                s[*y] -= 1.0; // now the gradient of the loss wrt the scores
                scale *= 1.0 - lr * self.params.l2;
                if scale < 1e-3 {
                    for w in &mut self.weights {
                        *w *= scale;
                    }
                    scale = 1.0;
                }
                let g = lr * weight / scale;
                // Skipping negligible gradients keeps late epochs cheap: the
                // softmax soon puts nearly all its mass on a few classes.
                // With many classes left, a pass over the whole row with the
                // skipped ones at 0 is quicker than picking them out, and
                // leaves their weights as they are: `w - (g * v * 0.0)` is
                // `w` but for a -0.0 weight (it becomes +0.0, the same
                // value) or a `g * v` that is not finite (never: `g` is
                // bounded by `scale >= 1e-3`, `v` by the normalisation).
                active.clear();
                for (c, (d, m)) in s.iter().zip(&mut masked).enumerate() {
                    *m = if d.abs() > 1e-4 { *d } else { 0.0 };
                    if *m != 0.0 {
                        active.push((c, *d));
                    }
                }
                let dense = active.len() * 4 >= k;
                for &(f, v) in x {
                    let row = &mut self.weights[f as usize * k..(f as usize + 1) * k];
                    if dense {
                        for (w, d) in row.iter_mut().zip(&masked) {
                            *w -= g * v * d;
                        }
                    } else {
                        for &(c, d) in &active {
                            row[c] -= g * v * d;
                        }
                    }
                }
                for (b, d) in self.bias.iter_mut().zip(&s) {
                    *b -= lr * weight * d;
                }
            }
        }
        for w in &mut self.weights {
            *w *= scale;
        }
    }

    /// The example of `class` most similar to the message (word cosine):
    /// (example index, similarity).
    pub fn nearest(&self, v: &Vectorized, class: usize) -> Option<(usize, f32)> {
        if class + 1 >= self.class_start.len() {
            return None;
        }
        let (start, end) = (
            self.class_start[class] as usize,
            self.class_start[class + 1] as usize,
        );
        let mut sims = vec![0.0f32; end - start];
        for &(f, x) in &v.words {
            if let Some(list) = self.postings.get(&posting_key(class, f)) {
                for &(slot, y) in list {
                    sims[slot as usize] += x * y;
                }
            }
        }
        let (slot, sim) =
            sims.iter()
                .enumerate()
                .fold((0, 0.0f32), |b, (i, &s)| if s > b.1 { (i, s) } else { b });
        // No shared word: no example is "nearest" in any useful sense.
        (sim > 0.0).then(|| (self.class_order[start + slot] as usize, sim))
    }
}

fn posting_key(class: usize, feature: u32) -> u64 {
    mix(((class as u64) << 32) | feature as u64)
}

fn scale_to(v: &mut SparseVec, norm: f32) {
    let n = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for (_, x) in v.iter_mut() {
            *x *= norm / n;
        }
    }
}

/// Dot product of two sparse vectors sorted by key.
pub fn dot<K: Ord>(a: &[(K, f32)], b: &[(K, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in s.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in s.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(data: &[(&str, usize)], k: usize) -> Lexical {
        let ex: Vec<(String, usize)> = data
            .iter()
            .map(|(t, c)| (crate::util::normalize::normalize(t), *c))
            .collect();
        Lexical::train(&ex, k, &[], Params::default())
    }

    #[test]
    fn char_ngrams_match_sklearn_char_wb_count() {
        // " ab " has 4 chars: 3 bigrams, 2 trigrams, 1 four-gram.
        let (mut w, mut c) = (Vec::new(), Vec::new());
        keys("ab", &mut w, &mut c);
        assert_eq!(w.len(), 1);
        assert_eq!(c.len(), 6);
    }

    #[test]
    fn learns_two_classes_and_tolerates_a_typo() {
        let lex = train(
            &[
                ("how much is shipping", 0),
                ("shipping price", 0),
                ("what does delivery cost", 0),
                ("where is my order", 1),
                ("track my package", 1),
                ("has my order shipped yet", 1),
            ],
            2,
        );
        let p = lex.probabilities(&lex.vectorize("how much is shiping"));
        assert!(p[0] > p[1], "{p:?}");
        let p = lex.probabilities(&lex.vectorize("where is my pakage"));
        assert!(p[1] > p[0], "{p:?}");
    }

    #[test]
    fn unseen_words_lower_coverage() {
        let lex = train(&[("how much is shipping", 0), ("where is my order", 1)], 2);
        let known = lex.vectorize("how much is shipping");
        let unknown = lex.vectorize("how much is plutonium");
        assert!((known.coverage - 1.0).abs() < 1e-6);
        assert!(unknown.coverage < 0.7, "{}", unknown.coverage);
        assert_eq!(lex.vectorize("").coverage, 0.0);
    }

    #[test]
    fn a_near_miss_of_a_known_word_counts_as_known() {
        let lex = train(&[("how much is delivery", 0), ("where is my order", 1)], 2);
        // Left out, added, changed, swapped: one typo each.
        for typo in ["delivry", "deliverry", "delivary", "dleivery"] {
            let v = lex.vectorize(&format!("how much is {typo}"));
            assert!((v.coverage - 1.0).abs() < 1e-6, "{typo}: {}", v.coverage);
        }
        // Two typos in one word, or none near a known word, are unknown.
        for far in ["dlivry", "plutonium", "orda"] {
            let v = lex.vectorize(&format!("how much is {far}"));
            assert!(v.coverage < 0.7, "{far}: {}", v.coverage);
        }
    }

    #[test]
    fn a_near_miss_is_scored_as_the_known_word() {
        let lex = train(
            &[
                ("how long does delivery take", 0),
                ("when will my parcel arrive", 0),
                ("where is my order", 1),
                ("track my order", 1),
            ],
            2,
        );
        let feature = |w: &str| lex.vocab[&word_key(w)];
        // Short typos in context: "lnog" swapped, "tak" a letter left out.
        let v = lex.vectorize("how lnog does delivery tak");
        assert!((v.coverage - 1.0).abs() < 1e-6, "{}", v.coverage);
        for known in ["long", "take"] {
            assert!(
                v.words.iter().any(|&(f, _)| f == feature(known)),
                "{known} not read"
            );
        }
        // Read at a discount: weaker than the word spelt right.
        let right = lex.vectorize("how long does delivery take");
        let weight = |v: &Vectorized| {
            v.words
                .iter()
                .find(|&&(f, _)| f == feature("long"))
                .map_or(0.0, |&(_, x)| x)
        };
        assert!(weight(&v) < weight(&right));
        let p = lex.probabilities(&v);
        assert!(p[0] > 0.5, "{p:?}");
    }

    #[test]
    fn a_short_near_miss_is_read_only_as_a_word_of_the_likely_intents() {
        let lex = train(
            &[
                ("how much is shipping", 0),
                ("shipping cost for a parcel", 0),
                ("where is my order", 1),
                ("track my order", 1),
                ("what are your opening hours", 2),
                ("when do you open", 2),
                ("can i pay with paypal", 3),
                ("which payment methods", 3),
                ("i want a refund", 4),
                ("refund my money", 4),
                ("do you sell gift cards", 5),
                ("buy a gift card", 5),
                ("my item arrived broken", 6),
                ("the box was damaged", 6),
                ("change my delivery address", 7),
                ("update the address", 7),
                ("show me the store maps", 8),
                ("maps of the shop", 8),
            ],
            9,
        );
        // "ordr" is a word of the likely intent (order status).
        let v = lex.vectorize("track my ordr");
        assert!((v.coverage - 1.0).abs() < 1e-6, "{}", v.coverage);
        // "mars" is a letter from "maps", but no likely intent of a
        // shipping-cost question says it; a question about maps reads it.
        let v = lex.vectorize("shipping cost to mars");
        assert!(v.coverage < 0.9, "{}", v.coverage);
        let v = lex.vectorize("show me the store mars");
        assert!((v.coverage - 1.0).abs() < 1e-6, "{}", v.coverage);
        // A short word with a letter added is another word, never a typo:
        // "ford" is not "for".
        let v = lex.vectorize("shipping cost for a ford");
        assert!(v.coverage < 0.9, "{}", v.coverage);
    }
}
