//! Delivery of live events to WebSockets: a broadcast channel per watched
//! conversation (created by the first watcher, removed with the last) and
//! one for all agents. Channels carry what was stored, in order; a watcher
//! that falls behind reads the gap back from the store by sequence number,
//! so a slow socket can lose nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::api::Suggestion;
use crate::conversation::Record;

/// Capacity of each conversation's channel: a watcher this far behind
/// catches up from the store instead. A conversation gets a few records per
/// message and typing notices capped by the socket rate limit, so 32 is
/// plenty; every slot is allocated when the first watcher comes, and at 256
/// they took 12 KB of each idle visitor socket (issue 15).
const CHANNEL: usize = 32;

/// Capacity of the one channel all agents' sockets share: every
/// conversation's records pass through it.
const AGENT_CHANNEL: usize = 1024;

/// What a conversation's watchers receive.
#[derive(Debug, Clone)]
pub enum ConvPush {
    Record(Arc<Record>),
    /// Someone is typing: `visitor` or `agent`. Not stored.
    Typing {
        from: &'static str,
    },
}

/// What agents' sockets receive.
#[derive(Debug, Clone)]
pub enum AgentPush {
    /// A record of a conversation; each socket forwards those of its
    /// agent's conversations.
    Record {
        conversation: String,
        record: Arc<Record>,
        /// Suggested replies to a visitor message, computed once where it
        /// was stored (never per socket); empty for other records.
        suggestions: Arc<[Suggestion]>,
        /// The agent who held the conversation once this record was
        /// applied (`None`: nobody). A socket decides by this, not by who
        /// holds it when the socket reads the push: a socket behind by a
        /// claim and a close would otherwise drop the records of a
        /// conversation its agent held in between.
        holder: Option<Arc<str>>,
    },
    /// The queue changed: sockets send the new one.
    Queue,
    Typing {
        conversation: String,
    },
}

#[derive(Debug)]
pub struct Hub {
    /// A std `Mutex`: held for a map lookup, never across an `.await`.
    conversations: Mutex<HashMap<String, broadcast::Sender<ConvPush>>>,
    agents: broadcast::Sender<AgentPush>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            conversations: Mutex::new(HashMap::new()),
            agents: broadcast::channel(AGENT_CHANNEL).0,
        }
    }
}

/// A conversation's receiver; dropping it removes the channel when it was
/// the last one.
pub struct Watch {
    pub rx: broadcast::Receiver<ConvPush>,
    hub: Arc<Hub>,
    id: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self
            .hub
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Our own receiver still counts here.
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.id);
        }
    }
}

impl Hub {
    pub fn watch(self: &Arc<Self>, id: &str) -> Watch {
        let mut map = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        let rx = map
            .entry(id.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL).0)
            .subscribe();
        Watch {
            rx,
            hub: Arc::clone(self),
            id: id.to_string(),
        }
    }

    /// Whether a visitor's socket watches conversation `id` (only visitor
    /// sockets watch one conversation): email replies go to visitors who
    /// are not connected.
    pub fn watched(&self, id: &str) -> bool {
        self.conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    pub fn agents(&self) -> broadcast::Receiver<AgentPush> {
        self.agents.subscribe()
    }

    /// Sends a conversation's new records to its watchers and to agents;
    /// `holders[i]` held the conversation once `records[i]` was applied,
    /// and `suggestions` go with the record whose `seq` they name.
    pub fn publish(
        &self,
        id: &str,
        records: &[Record],
        holders: &[Option<Arc<str>>],
        suggestions: &[Suggestion],
    ) {
        let tx = self
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        debug_assert_eq!(records.len(), holders.len());
        for (r, holder) in records.iter().zip(holders) {
            let r = Arc::new(r.clone());
            if let Some(tx) = &tx {
                // No receivers is not an error: nobody is watching.
                let _ = tx.send(ConvPush::Record(Arc::clone(&r)));
            }
            let mine: Arc<[Suggestion]> = suggestions
                .iter()
                .filter(|s| s.seq == r.seq)
                .cloned()
                .collect();
            let _ = self.agents.send(AgentPush::Record {
                conversation: id.to_string(),
                record: r,
                suggestions: mine,
                holder: holder.clone(),
            });
        }
    }

    /// Someone is typing in `id`: its agent (`agent`) or its visitor.
    pub fn typing(&self, id: &str, agent: bool) {
        let from = if agent { "agent" } else { "visitor" };
        if let Some(tx) = self
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            let _ = tx.send(ConvPush::Typing { from });
        }
        if !agent {
            let _ = self.agents.send(AgentPush::Typing {
                conversation: id.to_string(),
            });
        }
    }

    pub fn queue_changed(&self) {
        let _ = self.agents.send(AgentPush::Queue);
    }
}
