//! The folded state of recently written conversations, so that a write
//! does not read and fold its whole log each time. The log stays the
//! truth: every append names the last seq its state was folded to, and a
//! store that has more (another writer got there first) answers
//! `Conflict`; the write path then forgets the entry, reads the log, and
//! tries once more. Bounded: past `MAX` entries the least recently written
//! half goes.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::conversation::Conversation;

/// At most this many conversations' states are kept (about 1 KB each).
const MAX: usize = 10_000;

#[derive(Default)]
pub(super) struct States {
    map: Mutex<HashMap<String, Conversation>>,
}

impl States {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conversation>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `id` if it is known, taken out (the one writer of a
    /// conversation, under its stripe, gives it back after the write).
    pub(super) fn take(&self, id: &str) -> Option<Conversation> {
        self.map().remove(id)
    }

    /// Keeps `conv` as the state of `id` (folded to `conv.last_seq`).
    pub(super) fn put(&self, id: &str, conv: Conversation) {
        let mut m = self.map();
        if m.len() >= MAX && !m.contains_key(id) {
            let mut times: Vec<i64> = m.values().map(|c| c.last_at_ms).collect();
            let cut = times.len() / 2;
            let (_, nth, _) = times.select_nth_unstable(cut);
            let nth = *nth;
            m.retain(|_, c| c.last_at_ms > nth);
        }
        m.insert(id.to_string(), conv);
    }

    /// The seq the kept state of `id` is folded to, if one is kept.
    pub(super) fn last_seq(&self, id: &str) -> Option<u64> {
        self.map().get(id).map(|c| c.last_seq)
    }

    pub(super) fn forget(&self, id: &str) {
        self.map().remove(id);
    }
}
