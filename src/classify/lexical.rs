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
//! A typo is not an unknown word: the character n-grams already match
//! "delivry" to "delivery", so coverage counts a near-miss of a known word
//! (one letter left out, added, changed, or two swapped; see `near_miss`)
//! as known, or every misspelt word would discount a clear question into a
//! fallback.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::util::hash::Fnv;

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

/// Shortest known word that `near_miss` indexes.
const NEAR_MISS_MIN_CHARS: usize = 4;
/// Shortest unknown word that may be a known word with a letter added or
/// left out ("polcy", "shooes"); below it nearly every word is a letter
/// away from another ("mars", "maps"; on the shop's held-out set, 4 made
/// "do you ship to mars" a shipping question).
const NEAR_MISS_INDEL_CHARS: usize = 5;
/// Shortest unknown word that may be a known word with a letter changed
/// or two swapped ("retrun"): a changed letter in a short word is often
/// another word ("tyres", "types").
const NEAR_MISS_CHANGE_CHARS: usize = 6;

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
/// keys, two words share a key exactly when one letter left out, added or
/// changed, or two adjacent letters swapped, turns one into the other).
fn deletions(w: &str, mut f: impl FnMut(u64)) {
    for (i, _) in w.char_indices() {
        f(variant_key(w, Some(i)));
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
    /// Keys of every known word of `NEAR_MISS_MIN_CHARS` or more, whole
    /// (`variant_key`), and of their one-letter `deletions`: an unknown
    /// word that meets one is a near-miss, known for coverage.
    near_whole: std::collections::HashSet<u64, BuildHasherDefault<IdHasher>>,
    near_deleted: std::collections::HashSet<u64, BuildHasherDefault<IdHasher>>,
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
        sorted.sort_unstable_by_key(|(k, _)| *k);
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
            near_whole: Default::default(),
            near_deleted: Default::default(),
        };
        for (text, _) in examples {
            for w in text.split(' ') {
                if w.chars().count() >= NEAR_MISS_MIN_CHARS
                    && !w.bytes().any(|b| b.is_ascii_digit())
                {
                    lex.near_whole.insert(variant_key(w, None));
                    deletions(w, |k| {
                        lex.near_deleted.insert(k);
                    });
                }
            }
        }
        let mut data = Vec::with_capacity(examples.len());
        let mut words = Vec::with_capacity(examples.len());
        for ((w, c), (_, class)) in per_example.into_iter().zip(examples) {
            let v = lex.weigh(&w, &c, &[]);
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
        let mut near = Vec::new();
        for word in normalized.split(' ') {
            if word.chars().count() < NEAR_MISS_INDEL_CHARS {
                continue;
            }
            let k = word_key(word);
            if k & 2 == 0 && !self.vocab.contains_key(&k) && self.near_miss(word) {
                near.push(k);
            }
        }
        self.weigh(&w, &c, &near)
    }

    /// Whether an unknown word is one typo away from a known one.
    fn near_miss(&self, word: &str) -> bool {
        // A letter left out: the word is a known word's deletion.
        if self.near_deleted.contains(&variant_key(word, None)) {
            return true;
        }
        let change = word.chars().count() >= NEAR_MISS_CHANGE_CHARS;
        let mut hit = false;
        deletions(word, |k| {
            // A letter added: a deletion of the word is a known word; a
            // letter changed or two swapped: both lose one to the same.
            hit |= self.near_whole.contains(&k) || (change && self.near_deleted.contains(&k));
        });
        hit
    }

    /// Weighs keys into features; unigram keys in `near` are near-misses of
    /// known words, counted as known by coverage.
    fn weigh(&self, w: &[(u64, u32)], c: &[(u64, u32)], near: &[u64]) -> Vectorized {
        let mut words: SparseVec = Vec::with_capacity(w.len());
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
        let mut chars: SparseVec = Vec::with_capacity(c.len());
        for &(k, tf) in c {
            if let Some(&f) = self.vocab.get(&k) {
                chars.push((f, (1.0 + (tf as f32).ln()) * self.idf[f as usize]));
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
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = self.params.seed | 1;
        let total = (self.params.epochs * data.len()) as f32;
        let mut step = 0f32;
        let mut scale = 1.0f32; // true weights = scale * stored weights
        let mut s = vec![0.0f32; k];
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
                for &(f, v) in x {
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
                for &(f, v) in x {
                    let row = &mut self.weights[f as usize * k..(f as usize + 1) * k];
                    for (w, d) in row.iter_mut().zip(&s) {
                        // Skipping negligible gradients keeps late epochs cheap.
                        if d.abs() > 1e-4 {
                            *w -= g * v * d;
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
        // Two typos in one word, or a short word, are unknown.
        // ("ordr": a letter left out of "order" is too short to trust.)
        for far in ["dlivry", "plutonium", "orda", "ordr"] {
            let v = lex.vectorize(&format!("how much is {far}"));
            assert!(v.coverage < 0.7, "{far}: {}", v.coverage);
        }
    }
}
