//! Read-only views for agents: the queue, live bot conversations, a
//! transcript with suggested replies; and what a visitor may see of a
//! record.

use super::*;

impl App {
    pub fn queue_view(&self) -> QueueView {
        let now = self.now_ms();
        let (waiting, online) = {
            let q = self.queue();
            (q.waiting().to_vec(), q.online() as u32)
        };
        let items = waiting
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let conv = self
                    .inner
                    .store
                    .read(&w.conversation, 0)
                    .map(|log| Conversation::from_log(&log))
                    .unwrap_or_default();
                QueueItem {
                    position: i as u32 + 1,
                    reason: w.reason,
                    priority: w.priority,
                    waited_secs: (now.saturating_sub(w.since_ms).max(0) / 1000) as u64,
                    summary: Summary::of(&conv, now),
                    conversation: w.conversation,
                }
            })
            .collect();
        QueueView {
            waiting: items,
            agents_online: online,
        }
    }

    /// Bot conversations active lately, newest first: what an agent may
    /// take over.
    pub fn live(&self) -> Vec<LiveItem> {
        let now = self.now_ms();
        let mut ids: Vec<(String, i64)> = {
            let mut live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|_, t| now - *t < LIVE_MS);
            live.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ids.into_iter()
            .take(100)
            .filter_map(|(id, at)| {
                let conv = Conversation::from_log(&self.inner.store.read(&id, 0).ok()?);
                (conv.phase == Phase::Bot).then(|| LiveItem {
                    summary: Summary::of(&conv, now),
                    conversation: id,
                    last_at_ms: at,
                })
            })
            .collect()
    }

    pub fn transcript(&self, id: &str) -> Result<Transcript, ApiError> {
        let log = self.inner.store.read(id, 0)?;
        let conv = Conversation::from_log(&log);
        let classifier = self.classifier();
        let suggestions = log
            .iter()
            .flat_map(|r| suggest(&classifier, &conv, r))
            .collect();
        Ok(Transcript {
            id: id.to_string(),
            phase: conv.phase.as_str().to_string(),
            agent: match &conv.phase {
                Phase::WithAgent { agent } => Some(agent.clone()),
                _ => None,
            },
            summary: Summary::of(&conv, self.now_ms()),
            events: log,
            suggestions,
        })
    }
}

/// The error for a client ahead of the log.
pub fn resync(last_seq: u64) -> ApiError {
    ApiError::conflict("resync",
        format!("the conversation has no records after {last_seq}; fetch it again from after={last_seq}"),
    )
}

/// What the visitor may see of a record: not internal notes, not traces.
pub fn for_visitor(mut r: Record) -> Option<Record> {
    match &mut r.event {
        Event::InternalNote { .. } => return None,
        e => e.hide_internals(),
    }
    Some(r)
}

/// Agent assist: the top intents' answers to a visitor message.
pub(super) fn suggest(classifier: &Classifier, conv: &Conversation, r: &Record) -> Vec<Suggestion> {
    let Event::VisitorMessage { text, .. } = &r.event else {
        return Vec::new();
    };
    let ranking = classifier.classify(text);
    let set = classifier.intents();
    ranking
        .candidates
        .iter()
        .filter(|c| c.score > 0.05)
        .filter_map(|c| {
            let intent = set.get(&c.intent)?;
            let answer = intent.answers.first()?;
            let slots = conv.slots_of(&c.intent);
            let text = crate::intents::render(answer, |k| {
                if k == "name" {
                    conv.visitor.name.as_deref()
                } else {
                    slots.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
                }
            });
            Some(Suggestion {
                seq: r.seq,
                intent: c.intent.clone(),
                score: c.score,
                answer: text,
            })
        })
        .take(SUGGESTIONS)
        .collect()
}
