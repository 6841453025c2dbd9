//! Credentials. Agent and admin tokens are random, shown once, and stored
//! only as SHA-256 hashes (they carry 192 bits, so a slow hash buys
//! nothing). A visitor's token is an HMAC of the conversation id under the
//! server's secret: nothing per conversation to store, and one
//! conversation's token says nothing about another's.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A fresh random token, `fd_` and 48 hex digits.
pub fn new_token() -> String {
    format!("fd_{}", hex(&random_bytes::<24>()))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS's random source failing is not something to serve through.
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

pub use crate::util::hash::hex;

/// SHA-256 of a token, hex: what is stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// HMAC-SHA256 of `body` under `key`, hex.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The visitor token of a conversation.
pub fn visitor_token(secret: &[u8], conversation: &str) -> String {
    format!(
        "fdv_{}",
        sign(secret, format!("visitor:{conversation}").as_bytes())
    )
}

/// Compares without leaking where two strings first differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_differ_and_compare() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 51);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same(&a, "fd_"));
        let s = random_bytes::<32>();
        assert_ne!(visitor_token(&s, "c1"), visitor_token(&s, "c2"));
    }
}
