//! What one typo is, for every part that forgives one: the lexical layer
//! (a misspelt word counts as the known word it misses) and the repeat rule
//! (a restatement with a typo of an earlier word adds no word). Each caller
//! adds its own policy on how short a word may be; the edit is defined once.

/// One typo between two different words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The second word has one letter fewer: "delivry" for "delivery".
    LeftOut,
    /// The second word has one letter more: "deliverry".
    Added,
    /// One letter differs: "delivary".
    Changed,
    /// Two neighbouring letters swapped: "dleivery", "lnog".
    Swapped,
}

/// The typo that turns `known` into `word`, if one typo does; `None` for
/// equal words, words further apart, and any word with a digit (another
/// order number or size is another value, not a misspelling).
pub fn edit(known: &str, word: &str) -> Option<Edit> {
    if known == word || has_digit(known) || has_digit(word) {
        return None;
    }
    // Words are short: comparing chars in place beats collecting them.
    let (k, w) = (known.chars().count(), word.chars().count());
    let prefix = known
        .chars()
        .zip(word.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let same_after = |i: usize, j: usize| known.chars().skip(i).eq(word.chars().skip(j));
    if k == w + 1 {
        return same_after(prefix + 1, prefix).then_some(Edit::LeftOut);
    }
    if w == k + 1 {
        return same_after(prefix, prefix + 1).then_some(Edit::Added);
    }
    if k != w {
        return None;
    }
    if same_after(prefix + 1, prefix + 1) {
        return Some(Edit::Changed);
    }
    let mut a = known.chars().skip(prefix);
    let mut b = word.chars().skip(prefix);
    let (a0, a1, b0, b1) = (a.next(), a.next(), b.next(), b.next());
    (a0 == b1 && a1 == b0 && a.eq(b)).then_some(Edit::Swapped)
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_typo_each_way_and_nothing_further() {
        use Edit::*;
        for (known, word, want) in [
            ("delivery", "delivry", Some(LeftOut)),
            ("delivery", "deliverry", Some(Added)),
            ("delivery", "delivary", Some(Changed)),
            ("delivery", "dleivery", Some(Swapped)),
            ("long", "lnog", Some(Swapped)),
            ("does", "dose", Some(Swapped)),
            ("take", "tak", Some(LeftOut)),
            ("size", "sise", Some(Changed)),
            ("order", "oder", Some(LeftOut)),
            ("ab", "ba", Some(Swapped)),
            ("a", "", Some(LeftOut)),
            ("zürich", "zurich", Some(Changed)),
            ("delivery", "delivery", None),
            ("delivery", "dlivry", None),
            // A letter moved further than its neighbour is two typos.
            ("order", "rdoer", None),
            ("abcd", "bcad", None),
            ("order", "orders1", None),
            ("123456", "123457", None),
            ("canada", "", None),
        ] {
            assert_eq!(edit(known, word), want, "{known:?} {word:?}");
        }
    }
}
