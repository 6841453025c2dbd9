//! Leaf helpers shared by several modules: text normalisation, a stable
//! hash, the clock, what one typo is and a cache hint. This module depends on nothing of
//! ours (only std and `unicode-normalization`), so that `intents`, `classify`, `store`, `app`
//! and `eval` can all use it without importing one another.
//! `tests/structure.rs` keeps it a leaf.

pub mod clock;
pub mod hash;
pub mod normalize;
pub mod prefetch;
pub mod typo;
