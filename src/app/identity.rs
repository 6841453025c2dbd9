//! Identity verification as Intercom does it (README, "Identity
//! verification"): the shop's page passes the visitor's id with `hash`, the
//! hex HMAC-SHA256 of the id made by the shop's server with `[identity]
//! secret`, and here the hash is checked in constant time. A proven id is
//! recorded as *verified* (`Visitor::verified`, `Event::Identified`);
//! otherwise the id is kept as *claimed*, or, with `[identity] enforce`,
//! refused with `identity_unverified` and nothing is stored.
//!
//! The secret and the hash are never logged, stored or shown: only the
//! outcome (verified or not) is.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::visitor::one_line;
use super::*;

/// The longest `identity_hash` taken (a hex SHA-256 HMAC is 64).
pub const MAX_HASH_CHARS: usize = 128;

/// `FrontDesk.identify({id, name, email, hash})` after the chat began.
#[derive(Debug, Clone, Default)]
pub struct Identify {
    pub visitor_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub identity_hash: Option<String>,
}

/// Whether `hash` is the hex HMAC-SHA256 of `id` under `secret`: compared
/// in constant time by `hmac`'s `verify_slice`; a hash that is not 64 hex
/// digits (either case) is simply wrong.
pub fn hash_matches(secret: &[u8], id: &str, hash: &str) -> bool {
    let Some(bytes) = unhex(hash.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// The bytes of an even-length hex string.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// An optional one-line field, trimmed, at most `max` characters (blank:
/// none), as a conversation's start takes it.
pub(super) fn field(
    v: Option<String>,
    max: usize,
    name: &str,
    plain: bool,
) -> Result<Option<String>, ApiError> {
    let v = if plain { v.map(|s| one_line(&s)) } else { v };
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            "field_too_long",
            format!("`{name}` is longer than {max} characters"),
        )),
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other.map(|s| s.trim().to_string())),
    }
}

impl App {
    /// Whether the visitor id `id` (trimmed, as stored) is proven by
    /// `hash`. Without an id there is nothing to prove (an anonymous
    /// visitor, or the pre-chat form's name and email: never refused).
    /// `enforce` refuses an id without a hash (401) or with a wrong one
    /// (403), both `identity_unverified`; otherwise such an id is claimed
    /// (`Ok(false)`).
    pub(super) fn prove_identity(
        &self,
        id: Option<&str>,
        hash: Option<&str>,
    ) -> Result<bool, ApiError> {
        let hash = hash.map(str::trim).filter(|h| !h.is_empty());
        if hash.is_some_and(|h| h.chars().count() > MAX_HASH_CHARS) {
            return Err(ApiError::invalid(
                "field_too_long",
                format!("`identity_hash` is longer than {MAX_HASH_CHARS} characters"),
            ));
        }
        let Some(id) = id else {
            if hash.is_some() {
                return Err(ApiError::invalid(
                    "identity_without_id",
                    "`identity_hash` proves a `visitor_id`: send the id with it",
                ));
            }
            return Ok(false);
        };
        let settings = &self.inner.config.identity;
        let verified = match (&settings.secret, hash) {
            (Some(secret), Some(h)) => hash_matches(secret.0.as_bytes(), id, h),
            _ => false,
        };
        if verified || !settings.enforce {
            if hash.is_some() && !verified {
                // The outcome only: never the id's hash or the secret.
                tracing::warn!(
                    secret_set = settings.secret.is_some(),
                    "a visitor identity hash did not verify; the id is kept as claimed"
                );
            }
            return Ok(verified);
        }
        Err(match hash {
            None => ApiError::new(
                ErrorKind::Unauthorized,
                "identity_unverified",
                "this site verifies visitor identities: a `visitor_id` needs its `identity_hash`",
            ),
            Some(_) => ApiError::new(
                ErrorKind::Forbidden,
                "identity_unverified",
                "the `identity_hash` does not prove this `visitor_id`",
            ),
        })
    }

    /// Who the visitor is, told after the chat began (the page called
    /// `FrontDesk.identify` late, or again after a reload). Stores an
    /// `Identified` event, or nothing when it repeats what the log says.
    /// A verified identity stays: an unverified one after it is refused
    /// (`identity_already_verified`, 409), and so is a verified one of
    /// another id (`identity_conflict`, 409: another person is another
    /// conversation).
    pub fn identify(&self, id: &str, claim: Identify) -> Result<Stored, ApiError> {
        let visitor_id = field(claim.visitor_id, 200, "visitor_id", false)?
            .ok_or_else(|| ApiError::invalid("identity_without_id", "`visitor_id` is required"))?;
        let name = field(claim.name, 200, "name", true)?;
        let email = field(claim.email, 254, "email", true)?;
        let verified = self.prove_identity(Some(&visitor_id), claim.identity_hash.as_deref())?;
        let g = self.stripe(id);
        let conv = self.state(id)?;
        let now = &conv.visitor;
        if now.verified && !verified {
            self.keep(id, conv);
            return Err(ApiError::conflict(
                "identity_already_verified",
                "this conversation's visitor is verified: an unverified identity cannot replace it",
            ));
        }
        if now.verified && now.id.as_deref() != Some(visitor_id.as_str()) {
            self.keep(id, conv);
            return Err(ApiError::conflict(
                "identity_conflict",
                "this conversation belongs to another verified visitor: start a new conversation",
            ));
        }
        let same = now.id.as_deref() == Some(visitor_id.as_str())
            && now.verified == verified
            && (name.is_none() || name == now.name)
            && (email.is_none() || email == now.email);
        if same {
            self.keep(id, conv);
            return Ok(Stored {
                records: Vec::new(),
                duplicate: false,
            });
        }
        self.keep(id, conv);
        let event = Event::Identified {
            id: visitor_id,
            name,
            email,
            verified,
        };
        let appended = self.write_events(id, vec![event], self.now_ms())?;
        drop(g);
        Ok(Stored {
            records: appended.records,
            duplicate: appended.duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_only_its_id_under_its_secret() {
        let secret = b"0123456789abcdef-shop";
        let good = auth::sign(secret, b"customer-42");
        assert!(hash_matches(secret, "customer-42", &good));
        assert!(hash_matches(secret, "customer-42", &good.to_uppercase()));
        assert!(!hash_matches(secret, "customer-43", &good));
        assert!(!hash_matches(
            b"another secret of 16+",
            "customer-42",
            &good
        ));
        assert!(!hash_matches(secret, "customer-42", &good[..62]));
        assert!(!hash_matches(secret, "customer-42", "zz"));
        assert!(!hash_matches(secret, "customer-42", "é"));
        assert!(!hash_matches(secret, "customer-42", ""));
        // `from_str_radix` alone would read "+f" as 0x0f.
        let plus = format!("+{}", &good[1..]);
        assert!(!hash_matches(secret, "customer-42", &plus));
    }
}
