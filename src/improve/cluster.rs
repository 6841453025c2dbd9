//! Clusters of similar messages, for the failures inbox.
//!
//! Each message is normalised as the classifier does (`util::normalize`)
//! and split into the lexical layer's units: words on single spaces, plus
//! character 3- to 5-grams inside word boundaries (" parcel " gives " pa",
//! "par", …), which keep "parcel" and "parcels" or a typo close. Both
//! blocks are weighted by TF-IDF over the messages being clustered
//! (sublinear tf, smoothed idf, as `classify::lexical`), L2-normalised on
//! their own and joined with equal weight, so a cosine is in [0, 1].
//!
//! Grouping is greedy and deterministic: messages are taken in the order
//! given (the inbox passes time order); each joins the existing cluster
//! whose centroid is most similar if that cosine is at least
//! [`THRESHOLD`], else starts a new one. The order of the result is by
//! size (largest first), then by the first member's position. Same input,
//! same clusters, on every run and machine (keys are FNV hashes).
//!
//! With the semantic layer on, the inbox clusters the messages'
//! embeddings instead ([`cluster_embeddings`]): rewordings that share no
//! word ("my parcel never showed up" / "where is my package") meet there.

use std::collections::HashMap;

use crate::classify::lexical::dot;
use crate::util::hash::Fnv;
use crate::util::normalize::normalize;

/// The cosine a message needs with a cluster's centroid to join it.
/// Chosen on paraphrases of typical failure messages: rewordings of one
/// question ("where is my parcel" / "my parcel has not arrived yet" /
/// "Where's my parcel??") score 0.27–0.56 with each other, unrelated
/// questions sharing only function words ("is", "my") at most 0.17 (the
/// unit tests pin both sides). Lower merges topics; higher splits
/// rewordings that share one content word.
pub const THRESHOLD: f32 = 0.25;

/// A sparse vector: (feature key, weight), sorted by key.
type Sparse = Vec<(u64, f32)>;

const WORD: u8 = 1;
const CHAR: u8 = 2;

/// The features of a normalised text: (word keys, char keys) with counts.
fn features(normalized: &str) -> (HashMap<u64, u32>, HashMap<u64, u32>) {
    let mut words = HashMap::new();
    let mut chars = HashMap::new();
    for w in normalized.split(' ').filter(|w| !w.is_empty()) {
        let mut h = Fnv::new();
        h.write(&[WORD]);
        h.write(w.as_bytes());
        *words.entry(h.finish()).or_insert(0) += 1;
        let padded: Vec<char> = std::iter::once(' ')
            .chain(w.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in 3..=5usize {
            for gram in padded.windows(n) {
                let mut h = Fnv::new();
                h.write(&[CHAR]);
                let s: String = gram.iter().collect();
                h.write(s.as_bytes());
                *chars.entry(h.finish()).or_insert(0) += 1;
            }
        }
    }
    (words, chars)
}

fn normalized(mut v: Sparse) -> Sparse {
    let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in &mut v {
            *w /= norm;
        }
    }
    v
}

/// TF-IDF vectors of `texts`, unit length (empty for a text with no words).
pub fn vectors(texts: &[&str]) -> Vec<Sparse> {
    let feats: Vec<_> = texts.iter().map(|t| features(&normalize(t))).collect();
    let n = texts.len() as f32;
    let mut df: HashMap<u64, u32> = HashMap::new();
    for (w, c) in &feats {
        for k in w.keys().chain(c.keys()) {
            *df.entry(*k).or_insert(0) += 1;
        }
    }
    let idf = |k: &u64| ((1.0 + n) / (1.0 + df[k] as f32)).ln() + 1.0;
    let block = |m: &HashMap<u64, u32>| -> Sparse {
        let mut v: Sparse = m
            .iter()
            .map(|(k, c)| (*k, (1.0 + (*c as f32).ln()) * idf(k)))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        normalized(v)
    };
    feats
        .iter()
        .map(|(w, c)| {
            let mut v = block(w);
            v.extend(block(c));
            v.sort_by_key(|(k, _)| *k);
            normalized(v)
        })
        .collect()
}

/// The cosine of two texts' vectors (over just these two texts' idf).
pub fn similarity(a: &str, b: &str) -> f32 {
    let v = vectors(&[a, b]);
    dot(&v[0], &v[1])
}

/// Groups `texts` (by index) into clusters of similar texts: each cluster
/// lists its members' indexes in input order; clusters come largest
/// first, then by their first member.
pub fn cluster(texts: &[&str]) -> Vec<Vec<usize>> {
    group(&vectors(texts), THRESHOLD)
}

/// The cosine a message's embedding needs with a cluster's centroid to
/// join it, when the semantic layer is on. Set on the model the app
/// ships with (all-MiniLM-L6-v2): rewordings of one question that share
/// no word ("my parcel never showed up" / "where is my package, it did
/// not arrive") score 0.61 with each other, and an unrelated shop
/// question ("do you sell gift cards") 0.15–0.20 with either;
/// `tests/transformer.rs` pins both sides with the real model. Measured
/// on these few pairs only, not tuned on a labelled set.
pub const SEMANTIC_THRESHOLD: f32 = 0.5;

/// [`cluster`] on sentence embeddings (one per message, as the semantic
/// layer computes them) instead of TF-IDF vectors: the same greedy
/// grouping, on cosines of meaning, with [`SEMANTIC_THRESHOLD`].
pub fn cluster_embeddings(embeddings: &[Vec<f32>]) -> Vec<Vec<usize>> {
    let vecs: Vec<Sparse> = embeddings
        .iter()
        .map(|e| normalized(e.iter().enumerate().map(|(k, w)| (k as u64, *w)).collect()))
        .collect();
    group(&vecs, SEMANTIC_THRESHOLD)
}

/// The greedy grouping of unit vectors (see the module comment). Each
/// cluster keeps its centroid normalised, rebuilt only when a member
/// joins: a message costs one sparse dot product per cluster.
fn group(vecs: &[Sparse], threshold: f32) -> Vec<Vec<usize>> {
    struct Group {
        members: Vec<usize>,
        /// The (unnormalised) sum of the members' vectors.
        sum: HashMap<u64, f32>,
        centroid: Sparse,
    }
    let centroid_of = |sum: &HashMap<u64, f32>| {
        let mut c: Sparse = sum.iter().map(|(k, w)| (*k, *w)).collect();
        c.sort_by_key(|(k, _)| *k);
        normalized(c)
    };
    let mut clusters: Vec<Group> = Vec::new();
    for (i, v) in vecs.iter().enumerate() {
        let mut best: Option<(usize, f32)> = None;
        for (c, g) in clusters.iter().enumerate() {
            let s = dot(v, &g.centroid);
            // Strictly greater: on a tie the older cluster wins.
            if s >= threshold && best.is_none_or(|(_, b)| s > b) {
                best = Some((c, s));
            }
        }
        match best {
            Some((c, _)) => {
                let g = &mut clusters[c];
                g.members.push(i);
                for (k, w) in v {
                    *g.sum.entry(*k).or_insert(0.0) += w;
                }
                g.centroid = centroid_of(&g.sum);
            }
            None => clusters.push(Group {
                members: vec![i],
                sum: v.iter().copied().collect(),
                centroid: v.clone(),
            }),
        }
    }
    let mut out: Vec<Vec<usize>> = clusters.into_iter().map(|g| g.members).collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGES: &[&str] = &[
        "where is my parcel",
        "do you sell gift wrapping",
        "my parcel has not arrived yet",
        "can you gift wrap my order?",
        "Where's my parcel??",
        "is gift wrapping available",
        "I want to pay with bitcoin",
    ];

    #[test]
    fn similar_messages_together_dissimilar_apart() {
        let got = cluster(MESSAGES);
        assert_eq!(
            got,
            vec![vec![0, 2, 4], vec![1, 3, 5], vec![6]],
            "clusters: {got:?}"
        );
    }

    #[test]
    fn deterministic() {
        let a = cluster(MESSAGES);
        for _ in 0..5 {
            assert_eq!(cluster(MESSAGES), a);
        }
    }

    #[test]
    fn the_threshold_sits_between_paraphrases_and_unrelated() {
        let v = vectors(MESSAGES);
        let cos = |i: usize, j: usize| dot(&v[i], &v[j]);
        assert!(cos(0, 4) > THRESHOLD, "paraphrase {}", cos(0, 4));
        assert!(cos(1, 5) > THRESHOLD, "paraphrase {}", cos(1, 5));
        assert!(cos(0, 2) > THRESHOLD, "paraphrase {}", cos(0, 2));
        assert!(cos(0, 1) < THRESHOLD, "unrelated {}", cos(0, 1));
        assert!(cos(0, 5) < THRESHOLD, "unrelated {}", cos(0, 5));
        assert!(cos(0, 6) < THRESHOLD, "unrelated {}", cos(0, 6));
        assert!((similarity("Hello", "hello!") - 1.0).abs() < 1e-5);
    }

    #[test]
    fn empty_and_wordless_input() {
        assert!(cluster(&[]).is_empty());
        assert_eq!(cluster(&["???", "!!!"]), vec![vec![0], vec![1]]);
    }
}
