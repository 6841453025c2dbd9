//! Who the visitor is, as far as the shop has proven it: the one place a
//! part of the bot that must not reveal private data to a stranger (an
//! action that looks up an order) asks (README, "Identity verification").
//! The proof itself (the HMAC check) is `app::identity`'s; this only
//! reads what the log recorded of it.

use super::state::Conversation;

/// A visitor identity the shop's server vouched for: the page passed the
/// visitor's `id` with an HMAC-SHA256 of it made with `[identity] secret`,
/// and the server checked it. Only `id` is proven; `name` and `email` are
/// as the page passed them (a visitor can edit their page), so compare
/// private data against `id` (ask the shop's backend by customer id), not
/// against the email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedIdentity<'a> {
    /// The shop's own id of the visitor, proven.
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// The proven identity of the conversation's visitor, if the shop proved
/// one (at the start or by a later `identify`); `None` for an anonymous
/// visitor and for an id that is only claimed (no or a wrong hash, with
/// `[identity] enforce` off).
pub fn verified_visitor(conv: &Conversation) -> Option<VerifiedIdentity<'_>> {
    let v = &conv.visitor;
    match (&v.id, v.verified) {
        (Some(id), true) => Some(VerifiedIdentity {
            id,
            name: v.name.as_deref(),
            email: v.email.as_deref(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Event, Record, Visitor};

    fn log(events: Vec<Event>) -> Conversation {
        let records: Vec<Record> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                seq: i as u64 + 1,
                at_ms: 0,
                event,
            })
            .collect();
        Conversation::from_log(&records)
    }

    fn started(id: Option<&str>, verified: bool) -> Event {
        Event::Started {
            visitor: Visitor {
                id: id.map(str::to_string),
                name: Some("Ann".into()),
                verified,
                ..Visitor::default()
            },
        }
    }

    fn identified(id: &str, verified: bool) -> Event {
        Event::Identified {
            id: id.into(),
            name: None,
            email: Some(format!("{id}@shop.example")),
            verified,
        }
    }

    #[test]
    fn only_a_proven_id_is_a_verified_visitor() {
        assert_eq!(verified_visitor(&log(vec![started(None, false)])), None);
        assert_eq!(
            verified_visitor(&log(vec![started(Some("42"), false)])),
            None
        );
        let c = log(vec![started(Some("42"), true)]);
        assert_eq!(
            verified_visitor(&c),
            Some(VerifiedIdentity {
                id: "42",
                name: Some("Ann"),
                email: None
            })
        );
    }

    #[test]
    fn a_later_proof_verifies_and_a_later_claim_does_not_replace_a_proof() {
        let c = log(vec![started(Some("7"), false), identified("42", true)]);
        let v = verified_visitor(&c).unwrap();
        assert_eq!(
            (v.id, v.name, v.email),
            ("42", Some("Ann"), Some("42@shop.example"))
        );
        let c = log(vec![
            started(None, false),
            identified("42", true),
            identified("666", false),
        ]);
        assert_eq!(verified_visitor(&c).unwrap().id, "42");
        assert_eq!(c.visitor.id.as_deref(), Some("42"));
        // A claim over a claim replaces it, still unverified.
        let c = log(vec![started(Some("7"), false), identified("8", false)]);
        assert_eq!(verified_visitor(&c), None);
        assert_eq!(c.visitor.id.as_deref(), Some("8"));
    }
}
