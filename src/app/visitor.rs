//! What a visitor does: start a conversation, write, ask for a person,
//! rate, leave an email, and read the log back as a visitor may see it.

use super::*;

impl App {
    // ---- visitors ----------------------------------------------------

    pub fn create_conversation(
        &self,
        new: NewConversation,
    ) -> Result<CreatedConversation, ApiError> {
        let clip =
            |v: Option<String>, max: usize, field: &str| -> Result<Option<String>, ApiError> {
                match v {
                    Some(s) if s.chars().count() > max => Err(ApiError::invalid(
                        "field_too_long",
                        format!("`{field}` is longer than {max} characters"),
                    )),
                    Some(s) if s.trim().is_empty() => Ok(None),
                    other => Ok(other.map(|s| s.trim().to_string())),
                }
            };
        // A name or address is one line of plain text: line breaks, other
        // control characters and bidi overrides would forge lines (or
        // reorder text) where it is shown, emails included.
        let plain = |v: Option<String>| v.map(|s| one_line(&s));
        let mut visitor = Visitor {
            name: clip(plain(new.name), 200, "name")?,
            id: clip(new.visitor_id, 200, "visitor_id")?,
            email: clip(plain(new.email), 254, "email")?,
            page_url: clip(new.page_url, 2000, "page_url")?,
            verified: false,
        };
        // Refused before anything is stored when `[identity] enforce` is on.
        visitor.verified =
            self.prove_identity(visitor.id.as_deref(), new.identity_hash.as_deref())?;
        let id = format!("c{}", auth::hex(&auth::random_bytes::<12>()));
        let record = self.inner.store.create(&id, self.now_ms(), visitor)?;
        self.touch_live(&id, record.at_ms, true);
        self.inner.inbox.record(&id, std::slice::from_ref(&record));
        self.inner
            .states
            .put(&id, Conversation::from_log(std::slice::from_ref(&record)));
        Ok(CreatedConversation {
            token: auth::visitor_token(&self.inner.secret, &id),
            id,
            events: vec![record],
        })
    }

    /// A visitor's message; a retried `client_id` returns what was stored
    /// for it the first time.
    pub fn send(&self, id: &str, msg: SendMessage) -> Result<Stored, ApiError> {
        self.check_text(&msg.text)?;
        let cid = msg.client_id.trim().to_string();
        if cid.is_empty() || cid.len() > 64 {
            return Err(ApiError::invalid(
                "bad_client_id",
                "`client_id` is 1 to 64 characters",
            ));
        }
        let _g = self.stripe(id);
        let conv = self.state(id)?;
        // A retry: what was stored for it the first time.
        let stored_before = |cid: &str| -> Result<Stored, ApiError> {
            let log = self.inner.store.read(id, 0)?;
            let i = log
                .iter()
                .position(|r| matches!(&r.event, Event::VisitorMessage { client_id, .. } if client_id == cid))
                .unwrap_or(log.len());
            Ok(Stored {
                records: with_replies(&log[i..]),
                duplicate: true,
            })
        };
        if conv.client_ids.contains(&cid) {
            self.keep(id, conv);
            return stored_before(&cid);
        }
        let now = self.now_ms();
        if let Err(e) = self.limit_messages(id, now) {
            self.keep(id, conv);
            return Err(e);
        }
        self.inner.metrics.inc(Count::Message("visitor"));
        let input = Input::Visitor {
            text: msg.text,
            client_id: cid.clone(),
        };
        // A message that needs the shop's backend: the call is made here,
        // under the conversation's stripe (its next write waits for the
        // answer, others do not), and its outcome goes to the step.
        let called = self.call_for(&conv, &input);
        let (appended, before) = self.apply_to(id, conv, input, now, called.as_ref())?;
        if appended.records.is_empty() {
            // This node's state was older than the log: another node had
            // stored this retry's message (its answer lost with that node),
            // so the step, decided again on the log, stored nothing. The
            // retry gets what was stored, as above.
            drop(_g);
            return stored_before(&cid);
        }
        drop(_g);
        self.after_queue_change(id, before);
        Ok(Stored {
            records: appended.records,
            duplicate: appended.duplicate,
        })
    }

    pub fn ask_for_person(&self, id: &str) -> Result<Stored, ApiError> {
        self.apply(id, Input::AskForPerson)
    }

    pub fn rate(&self, id: &str, rate: Rate) -> Result<Stored, ApiError> {
        let comment = rate.comment.filter(|c| !c.trim().is_empty());
        if let Some(c) = &comment {
            self.check_text(c)?;
        }
        self.apply(
            id,
            Input::Rate {
                score: rate.score,
                comment,
            },
        )
    }

    /// One more visitor input on conversation `id` against its
    /// `messages_per_minute`: messages and feedback share the budget.
    pub(super) fn limit_messages(&self, id: &str, now: i64) -> Result<(), ApiError> {
        self.inner
            .rates
            .hit(
                &format!("msg:{id}"),
                self.inner.config.limits.messages_per_minute,
                now,
            )
            .map_err(|wait| ApiError::rate_limited("messages", wait))
    }

    /// Helpful / not helpful on the answer at seq `about` (see
    /// `conversation::machine`'s `feedback` for what is stored and offered).
    /// It counts against the conversation's message limit, as a message
    /// does: each change is stored (a "no" with an offer of a person), so
    /// flipping it must not grow the log without bound.
    pub fn feedback(&self, id: &str, f: Feedback) -> Result<Stored, ApiError> {
        self.limit_messages(id, self.now_ms())?;
        self.apply(
            id,
            Input::Feedback {
                about: f.about,
                helpful: f.helpful,
            },
        )
    }

    pub fn leave_email(&self, id: &str, email: LeaveEmail) -> Result<Stored, ApiError> {
        self.apply(id, Input::LeaveEmail { email: email.email })
    }

    /// The log after `after`, as the visitor sees it (no internal notes,
    /// no traces); `for_agent` shows everything.
    pub fn events(&self, id: &str, after: u64, for_agent: bool) -> Result<Events, ApiError> {
        let log = self.inner.store.read(id, 0)?;
        let last_seq = log.last().map_or(0, |r| r.seq);
        if after > last_seq {
            return Err(resync(last_seq));
        }
        let conv = Conversation::from_log(&log);
        let position = self.queue().position(id);
        Ok(Events {
            events: log
                .into_iter()
                .filter(|r| r.seq > after)
                .filter_map(|r| {
                    if for_agent {
                        Some(r)
                    } else {
                        self.visitor_record(r)
                    }
                })
                .collect(),
            last_seq,
            phase: conv.phase.as_str().to_string(),
            position,
        })
    }
}

/// `s` as one line of plain text: control characters (CR, LF, tab, …)
/// and bidirectional controls become a space, runs of spaces one space.
pub(crate) fn one_line(s: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let spaced: String = s
        .chars()
        .map(|c| if c.is_control() || bidi(c) { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}
