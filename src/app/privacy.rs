//! What is stored about one visitor, and taking it away: every
//! conversation of a visitor exported whole, one conversation deleted, or
//! all of a visitor's.
//!
//! A visitor is found by the shop's visitor id (`Started.visitor.id`) or
//! an email address (`Started.visitor.email`, or one the visitor left
//! with `EmailLeft`; compared without regard to case). There is no index
//! by visitor: finding them reads every conversation's log (a scan; see
//! the README for its cost), which is right for requests an admin makes a
//! few times a month.
//!
//! Deleting goes through `Store::delete` (log, client ids, rating, time
//! index, and whatever the store keeps per conversation), then forgets
//! what the running app remembers of it (folded state, live list) and the
//! webhook deliveries not yet sent, which carry its transcript. A
//! conversation that is queued or with an agent is refused
//! (`conversation_open`): an agent has it on screen, so it is closed
//! first, the way agents close any conversation; then it can go.

use serde::{Deserialize, Serialize};

use super::*;

/// Who an export or a deletion is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitorKey {
    /// The shop's own id for a logged-in visitor.
    Id(String),
    /// An email address, trimmed and lowercased.
    Email(String),
}

impl VisitorKey {
    /// Exactly one of the two, not blank.
    pub fn parse(
        visitor_id: Option<String>,
        email: Option<String>,
    ) -> Result<VisitorKey, ApiError> {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        match (visitor_id, email) {
            (Some(id), None) if !blank(&Some(id.clone())) => Ok(VisitorKey::Id(id.trim().into())),
            (None, Some(e)) if !blank(&Some(e.clone())) => {
                Ok(VisitorKey::Email(e.trim().to_lowercase()))
            }
            _ => Err(ApiError::invalid(
                "bad_visitor",
                "give exactly one of `visitor_id` and `email`, not blank",
            )),
        }
    }

    /// Whether the conversation `log` is this visitor's.
    pub fn matches(&self, log: &[Record]) -> bool {
        log.iter().any(|r| match (self, &r.event) {
            (VisitorKey::Id(id), Event::Started { visitor }) => visitor.id.as_deref() == Some(id),
            (VisitorKey::Email(e), Event::Started { visitor }) => visitor
                .email
                .as_deref()
                .is_some_and(|v| v.trim().to_lowercase() == *e),
            (VisitorKey::Email(e), Event::EmailLeft { email }) => email.trim().to_lowercase() == *e,
            // An identity the page passed after the chat began.
            (VisitorKey::Id(i), Event::Identified { id, .. }) => id == i,
            (VisitorKey::Email(e), Event::Identified { email: Some(v), .. }) => {
                v.trim().to_lowercase() == *e
            }
            _ => false,
        })
    }
}

/// One conversation of an export: everything stored about it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportedConversation {
    pub id: String,
    /// `bot`, `queued`, `with_agent` or `closed`.
    pub phase: String,
    /// The whole log, internal notes and decision traces included.
    pub events: Vec<Record>,
}

/// Everything stored about one visitor.
#[derive(Debug, Serialize, Deserialize)]
pub struct VisitorExport {
    /// What the visitor was found by.
    pub visitor_id: Option<String>,
    pub email: Option<String>,
    pub exported_at_ms: i64,
    /// Their conversations, by id.
    pub conversations: Vec<ExportedConversation>,
}

/// What a deletion of a visitor's data removed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Deleted {
    /// The conversations deleted, by id.
    pub conversations: Vec<String>,
}

impl App {
    /// The ids and logs of every conversation of `who` (a scan).
    fn conversations_of(&self, who: &VisitorKey) -> Result<Vec<(String, Vec<Record>)>, ApiError> {
        let mut out = Vec::new();
        for id in self.inner.store.conversations()? {
            let log = match self.inner.store.read(&id, 0) {
                Ok(log) => log,
                // Deleted since the list was read.
                Err(crate::store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if who.matches(&log) {
                out.push((id, log));
            }
        }
        Ok(out)
    }

    /// Every conversation of `who`, with its full log.
    pub fn export_visitor(&self, who: &VisitorKey) -> Result<VisitorExport, ApiError> {
        let conversations = self
            .conversations_of(who)?
            .into_iter()
            .map(|(id, events)| ExportedConversation {
                phase: Conversation::from_log(&events).phase.as_str().to_string(),
                id,
                events,
            })
            .collect();
        let (visitor_id, email) = match who {
            VisitorKey::Id(id) => (Some(id.clone()), None),
            VisitorKey::Email(e) => (None, Some(e.clone())),
        };
        Ok(VisitorExport {
            visitor_id,
            email,
            exported_at_ms: self.now_ms(),
            conversations,
        })
    }

    /// Deletes one conversation and everything stored about it; refused
    /// while it is queued or with an agent (`conversation_open`).
    pub fn delete_conversation(&self, id: &str) -> Result<(), ApiError> {
        let _g = self.stripe(id);
        self.refuse_open(id)?;
        self.remove_locked(id)
    }

    /// Deletes every conversation of `who`. Nothing is deleted if one of
    /// them is queued or with an agent (`conversation_open`, naming it).
    /// One that becomes open while the others are deleted stops the
    /// deletion there: those before it are gone (the README says so).
    pub fn delete_visitor(&self, who: &VisitorKey) -> Result<Deleted, ApiError> {
        let found = self.conversations_of(who)?;
        for (id, log) in &found {
            refuse_phase(id, &Conversation::from_log(log).phase)?;
        }
        let mut deleted = Vec::new();
        for (id, _) in found {
            let _g = self.stripe(&id);
            // Looked at again under the stripe: it may have moved since.
            match self.refuse_open(&id) {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            self.remove_locked(&id)?;
            deleted.push(id);
        }
        Ok(Deleted {
            conversations: deleted,
        })
    }

    /// `conversation_open` if `id` is queued or with an agent. The caller
    /// holds its stripe.
    fn refuse_open(&self, id: &str) -> Result<(), ApiError> {
        self.inner.states.forget(id);
        let log = self.inner.store.read(id, 0)?;
        if log.is_empty() {
            return Err(ApiError::not_found("conversation"));
        }
        refuse_phase(id, &Conversation::from_log(&log).phase)
    }

    /// Deletes `id` from the store and from what the app remembers of it.
    /// The caller holds its stripe and has checked it is not open.
    pub(super) fn remove_locked(&self, id: &str) -> Result<(), ApiError> {
        let (_, files) = self.attachments_of(id)?;
        self.inner.store.delete(id)?;
        self.forget_resumes(id)?;
        self.storage_freed(files);
        self.inner.report_cache.forget(id);
        self.inner.inbox.remove(id);
        self.inner.states.forget(id);
        self.inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        // Undelivered webhooks carry the transcript. Few and small: the
        // outbox holds only what is not yet acknowledged.
        for (key, value) in self.inner.store.outbox()? {
            let of = serde_json::from_slice::<serde_json::Value>(&value)
                .ok()
                .and_then(|v| v.get("conversation")?.as_str().map(|c| c == id));
            if of == Some(true) {
                self.inner.store.remove_outbox(&key)?;
            }
        }
        tracing::info!(conversation = %id, "conversation deleted");
        Ok(())
    }
}

fn refuse_phase(id: &str, phase: &Phase) -> Result<(), ApiError> {
    match phase {
        Phase::Queued { .. } | Phase::WithAgent { .. } => Err(ApiError::conflict(
            "conversation_open",
            format!(
                "conversation `{id}` is {}: an agent closes it first, then it can be deleted",
                phase.as_str()
            ),
        )),
        Phase::Bot | Phase::Closed => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address is the visitor's in any case, non-ASCII letters included
    /// (the query is lower-cased with Unicode's rules, so the stored one
    /// must be too, or `Ä@x.de` is neither exported nor deleted).
    #[test]
    fn emails_match_without_regard_to_case() {
        let started = |email: &str| Record {
            seq: 1,
            at_ms: 0,
            event: Event::Started {
                visitor: Visitor {
                    email: Some(email.into()),
                    ..Visitor::default()
                },
            },
        };
        let left = |email: &str| Record {
            seq: 2,
            at_ms: 0,
            event: Event::EmailLeft {
                email: email.into(),
            },
        };
        let key = VisitorKey::parse(None, Some(" Äda@Example.de ".into())).unwrap();
        assert!(key.matches(&[started("äDA@example.DE")]));
        assert!(key.matches(&[started("x@y.z"), left("ÄDA@EXAMPLE.DE")]));
        assert!(!key.matches(&[started("ada@example.de")]));
    }
}
