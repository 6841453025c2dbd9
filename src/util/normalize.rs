//! Text normalisation shared by every layer, so that a keyword, a pattern, an
//! example and a visitor's message are compared in one form: Unicode NFKD with
//! combining marks dropped ("café" → "cafe"), lowercase, apostrophes removed
//! ("don't" → "dont"), every other non-alphanumeric character a space, and
//! runs of spaces folded to one. Digits are kept (order numbers matter).

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Returns the normalised form of `text`: words of lowercase letters and
/// digits separated by single spaces, with no leading or trailing space.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkd() {
        if is_combining_mark(c) || matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`') {
            continue;
        }
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            for l in c.to_lowercase() {
                out.push(l);
            }
        } else {
            pending_space = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    macro_rules! t {
        ($($input:expr => $want:expr),* $(,)?) => {
            $(assert_eq!(normalize($input), $want, "normalize({:?})", $input);)*
        };
    }

    #[test]
    fn table() {
        t! {
            "How much is SHIPPING?" => "how much is shipping",
            "  café   crème!! " => "cafe creme",
            "don't won’t" => "dont wont",
            "order #12345678." => "order 12345678",
            "ＦＵＬＬ width" => "full width",
            "" => "",
            "!!!" => "",
            "e-mail/phone" => "e mail phone",
            "Straße" => "straße",
        }
    }
}
