use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::conversation::HandoffReason;
// What the store persists is defined there (the store imports no
// `handoff`); the queue works on the same types.
pub use crate::store::{Presence, Waiting};

/// An agent as the queue sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub presence: Presence,
    /// Concurrent conversations this agent can hold.
    pub capacity: u32,
    /// Conversations the agent holds now.
    pub active: BTreeSet<String>,
}

impl Agent {
    fn free(&self) -> u32 {
        if self.presence == Presence::Online {
            self.capacity.saturating_sub(self.active.len() as u32)
        } else {
            0
        }
    }
}

/// A queue operation that does not fit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{0}` is not online")]
    NotOnline(String),
    #[error("agent `{0}` is at capacity")]
    AtCapacity(String),
    #[error("conversation `{0}` is not waiting")]
    NotWaiting(String),
    #[error("agent `{agent}` does not hold conversation `{conversation}`")]
    NotHeld { agent: String, conversation: String },
}

/// How many recent handle times the wait estimate averages (a store
/// shared by several nodes keeps as many of all of theirs).
const HANDLE_WINDOW: usize = crate::store::HANDLE_TIMES_SHARED;

/// The queue and the agents.
#[derive(Debug, Clone)]
pub struct Queue {
    waiting: Vec<Waiting>,
    agents: BTreeMap<String, Agent>,
    /// Recent handle times in seconds, newest last.
    handle_secs: VecDeque<u64>,
    /// Handle times measured here and not yet given to the other nodes
    /// (`take_unshared`), newest last, at most `HANDLE_WINDOW`.
    unshared: VecDeque<u64>,
    next_ticket: u64,
    /// Upset visitors (`negative_sentiment`) go before others.
    pub priority_for_upset: bool,
    /// Assumed handle time before any was measured.
    pub default_handle_secs: u64,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            waiting: Vec::new(),
            agents: BTreeMap::new(),
            handle_secs: VecDeque::new(),
            unshared: VecDeque::new(),
            next_ticket: 0,
            priority_for_upset: true,
            default_handle_secs: 300,
        }
    }
}

impl Queue {
    /// Adds a conversation (again: a repeat keeps its place); returns its
    /// 1-based position.
    pub fn enqueue(&mut self, conversation: &str, reason: HandoffReason, now_ms: i64) -> u32 {
        if self.position(conversation).is_none() {
            self.next_ticket += 1;
            self.waiting.push(Waiting {
                conversation: conversation.to_string(),
                reason,
                priority: self.priority_for_upset && reason == HandoffReason::NegativeSentiment,
                since_ms: now_ms,
                ticket: self.next_ticket,
            });
            // Priority first, then arrival: a stable, total order.
            self.waiting.sort_by_key(|w| (!w.priority, w.ticket));
        }
        self.position(conversation).unwrap_or(0)
    }

    /// Restores a waiting entry as stored (after a restart), keeping order.
    pub fn restore(&mut self, w: Waiting) {
        self.next_ticket = self.next_ticket.max(w.ticket);
        self.waiting.push(w);
        self.waiting.sort_by_key(|w| (!w.priority, w.ticket));
    }

    /// 1-based position, if waiting.
    pub fn position(&self, conversation: &str) -> Option<u32> {
        self.waiting
            .iter()
            .position(|w| w.conversation == conversation)
            .map(|p| p as u32 + 1)
    }

    pub fn waiting(&self) -> &[Waiting] {
        &self.waiting
    }

    /// Takes a conversation out of the queue (closed while waiting, or the
    /// visitor left).
    pub fn remove(&mut self, conversation: &str) -> Option<Waiting> {
        let i = self
            .waiting
            .iter()
            .position(|w| w.conversation == conversation)?;
        Some(self.waiting.remove(i))
    }

    pub fn set_agent(&mut self, name: &str, presence: Presence, capacity: u32) {
        let a = self.agents.entry(name.to_string()).or_insert(Agent {
            presence,
            capacity,
            active: BTreeSet::new(),
        });
        a.presence = presence;
        a.capacity = capacity;
    }

    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.get(name)
    }

    /// Agents online now.
    pub fn online(&self) -> usize {
        self.agents
            .values()
            .filter(|a| a.presence == Presence::Online)
            .count()
    }

    /// An agent takes a waiting conversation (or, with `live = true`, one the
    /// bot still has: taking over). Capacity is a rule, not a hint.
    pub fn claim(&mut self, agent: &str, conversation: &str, live: bool) -> Result<(), QueueError> {
        self.can_take(agent)?;
        if self.remove(conversation).is_none() && !live {
            return Err(QueueError::NotWaiting(conversation.to_string()));
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.active.insert(conversation.to_string());
        }
        Ok(())
    }

    /// Records, after a restart, that `agent` holds `conversation` (read
    /// from its log), whatever the agent's presence or capacity now.
    pub fn claim_restored(&mut self, agent: &str, conversation: &str) -> Result<(), QueueError> {
        self.remove(conversation);
        let a = self
            .agents
            .get_mut(agent)
            .ok_or_else(|| QueueError::UnknownAgent(agent.to_string()))?;
        a.active.insert(conversation.to_string());
        Ok(())
    }

    /// Auto-assignment: pairs waiting visitors with agents
    /// (`next_assignment`) until either runs out.
    pub fn assign(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some((agent, head)) = self.next_assignment(&[]) {
            if self.claim(&agent, &head, false).is_err() {
                break;
            }
            out.push((agent, head));
        }
        out
    }

    /// The next (agent, conversation) auto-assignment would make, without
    /// making it: the first waiting conversation (upset visitors are ahead
    /// when `priority_for_upset`) not in `skip`, for the least busy online
    /// agent with room (fewest conversations held; ties: more free slots,
    /// then name order). `None` when nobody waits or nobody has room.
    pub fn next_assignment(&self, skip: &[String]) -> Option<(String, String)> {
        let head = self
            .waiting
            .iter()
            .find(|w| !skip.contains(&w.conversation))?
            .conversation
            .clone();
        let agent = self
            .agents
            .iter()
            .filter(|(_, a)| a.free() > 0)
            .min_by(|x, y| {
                x.1.active
                    .len()
                    .cmp(&y.1.active.len())
                    .then(y.1.free().cmp(&x.1.free()))
                    .then(x.0.cmp(y.0))
            })?
            .0
            .clone();
        Some((agent, head))
    }

    /// Forgets an agent (removed by an admin); what they held is theirs
    /// no more.
    pub fn remove_agent(&mut self, name: &str) -> Option<Agent> {
        self.agents.remove(name)
    }

    /// Every agent the queue knows, by name.
    pub fn agents(&self) -> impl Iterator<Item = (&String, &Agent)> {
        self.agents.iter()
    }

    /// Moves a held conversation to another agent, who must be online with
    /// room for it.
    pub fn transfer(&mut self, from: &str, to: &str, conversation: &str) -> Result<(), QueueError> {
        self.holds(from, conversation)?;
        self.can_take(to)?;
        if let Some(a) = self.agents.get_mut(from) {
            a.active.remove(conversation);
        }
        if let Some(a) = self.agents.get_mut(to) {
            a.active.insert(conversation.to_string());
        }
        Ok(())
    }

    /// Marks `agent` as holding `conversation`, whatever its capacity: the
    /// undo of a release whose write the store refused.
    pub fn hold(&mut self, agent: &str, conversation: &str) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.active.insert(conversation.to_string());
        }
    }

    /// Forgets that `agent` holds `conversation`, recording no handling
    /// time: a release whose time is recorded once the write is stored
    /// (`handled`), or the undo of a claim the store refused.
    pub fn unhold(&mut self, agent: &str, conversation: &str) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.active.remove(conversation);
        }
    }

    /// Feeds one conversation's handling time to the wait estimate.
    pub fn handled(&mut self, secs: u64) {
        for window in [&mut self.handle_secs, &mut self.unshared] {
            window.push_back(secs);
            while window.len() > HANDLE_WINDOW {
                window.pop_front();
            }
        }
    }

    /// The handle times measured here since the last call, oldest first:
    /// what a node gives the others through a shared store.
    pub fn take_unshared(&mut self) -> Vec<u64> {
        self.unshared.drain(..).collect()
    }

    /// Gives back what `take_unshared` took when the store did not take
    /// it (it goes with the next beat).
    pub fn unshare(&mut self, secs: Vec<u64>) {
        for s in secs.into_iter().rev() {
            if self.unshared.len() >= HANDLE_WINDOW {
                break;
            }
            self.unshared.push_front(s);
        }
    }

    /// Replaces the handle times the estimate averages with every node's
    /// latest (oldest first), so that all nodes estimate alike. An empty
    /// list (nobody measured one yet) changes nothing.
    pub fn share_handle_times(&mut self, secs: &[u64]) {
        if secs.is_empty() {
            return;
        }
        let from = secs.len().saturating_sub(HANDLE_WINDOW);
        self.handle_secs = secs[from..].iter().copied().collect();
    }

    /// The agent is done with a conversation (closed, or returned to the
    /// bot); `handled_secs` feeds the wait estimate.
    pub fn release(
        &mut self,
        agent: &str,
        conversation: &str,
        handled_secs: u64,
    ) -> Result<(), QueueError> {
        self.holds(agent, conversation)?;
        if let Some(a) = self.agents.get_mut(agent) {
            a.active.remove(conversation);
        }
        self.handled(handled_secs);
        Ok(())
    }

    /// The agent exists, is online and has room for one more conversation.
    fn can_take(&self, agent: &str) -> Result<(), QueueError> {
        let a = self
            .agents
            .get(agent)
            .ok_or_else(|| QueueError::UnknownAgent(agent.to_string()))?;
        if a.presence != Presence::Online {
            return Err(QueueError::NotOnline(agent.to_string()));
        }
        if a.free() == 0 {
            return Err(QueueError::AtCapacity(agent.to_string()));
        }
        Ok(())
    }

    fn holds(&self, agent: &str, conversation: &str) -> Result<(), QueueError> {
        let a = self
            .agents
            .get(agent)
            .ok_or_else(|| QueueError::UnknownAgent(agent.to_string()))?;
        if a.active.contains(conversation) {
            Ok(())
        } else {
            Err(QueueError::NotHeld {
                agent: agent.to_string(),
                conversation: conversation.to_string(),
            })
        }
    }

    /// Mean of recent handle times, or the default before any.
    pub fn mean_handle_secs(&self) -> u64 {
        if self.handle_secs.is_empty() {
            self.default_handle_secs
        } else {
            self.handle_secs.iter().sum::<u64>() / self.handle_secs.len() as u64
        }
    }

    /// Estimated wait for the visitor at `position`: `None` when no agent is
    /// online (the visitor is told so instead of a number). Slots that are
    /// free now serve the first positions at once; after that, each of the
    /// online agents' slots frees one conversation per mean handle time.
    pub fn estimate_wait_secs(&self, position: u32) -> Option<u64> {
        let online: Vec<&Agent> = self
            .agents
            .values()
            .filter(|a| a.presence == Presence::Online)
            .collect();
        let slots: u32 = online.iter().map(|a| a.capacity).sum();
        if slots == 0 {
            return None;
        }
        let free: u32 = online.iter().map(|a| a.free()).sum();
        if position <= free {
            return Some(0);
        }
        let rounds = (position - free).div_ceil(slots) as u64;
        Some(rounds * self.mean_handle_secs())
    }

    /// A `Queued` event for every waiting visitor whose position or estimate
    /// differs from `before` (an earlier `positions()`): what to tell whom
    /// after a claim, a close, or an agent coming online.
    pub fn changes(
        &self,
        before: &[(String, u32, Option<u64>)],
    ) -> Vec<(String, crate::conversation::Event)> {
        self.positions()
            .into_iter()
            .filter(|now| !before.contains(now))
            .map(|(c, position, wait_secs)| {
                (
                    c,
                    crate::conversation::Event::Queued {
                        position,
                        wait_secs,
                    },
                )
            })
            .collect()
    }

    /// Every waiting conversation with its position and estimate, to tell
    /// visitors when theirs changed.
    pub fn positions(&self) -> Vec<(String, u32, Option<u64>)> {
        self.waiting
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let p = i as u32 + 1;
                (w.conversation.clone(), p, self.estimate_wait_secs(p))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HandoffReason::*;

    #[test]
    fn oldest_first_with_upset_visitors_ahead() {
        let mut q = Queue::default();
        assert_eq!(q.enqueue("a", Asked, 1), 1);
        assert_eq!(q.enqueue("b", LowConfidence, 2), 2);
        assert_eq!(q.enqueue("c", NegativeSentiment, 3), 1);
        assert_eq!(q.enqueue("a", Asked, 4), 2, "a repeat keeps its place");
        let order: Vec<&str> = q
            .waiting()
            .iter()
            .map(|w| w.conversation.as_str())
            .collect();
        assert_eq!(order, ["c", "a", "b"]);
        let mut fifo = Queue {
            priority_for_upset: false,
            ..Queue::default()
        };
        fifo.enqueue("a", Asked, 1);
        fifo.enqueue("c", NegativeSentiment, 2);
        assert_eq!(fifo.position("c"), Some(2));
    }

    #[test]
    fn handle_times_measured_here_are_taken_once_and_all_nodes_times_replace_the_window() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.enqueue("a", Asked, 1);
        q.enqueue("b", Asked, 2);
        q.handled(100);
        q.handled(200);
        assert_eq!(q.take_unshared(), [100, 200]);
        assert_eq!(q.take_unshared(), Vec::<u64>::new(), "taken once");
        q.handled(300);
        // A store that did not take them: they go with the next beat.
        let taken = q.take_unshared();
        q.unshare(taken);
        assert_eq!(q.take_unshared(), [300]);
        assert_eq!(q.mean_handle_secs(), 200);
        // Every node's latest, oldest first: what the estimate averages.
        q.share_handle_times(&[600, 600, 900]);
        assert_eq!(q.mean_handle_secs(), 700);
        assert_eq!(q.estimate_wait_secs(2), Some(700));
        q.share_handle_times(&[]);
        assert_eq!(q.mean_handle_secs(), 700, "nothing shared yet: unchanged");
        let many: Vec<u64> = (1..=(HANDLE_WINDOW as u64 + 10)).collect();
        q.share_handle_times(&many);
        let kept: Vec<u64> = (11..=(HANDLE_WINDOW as u64 + 10)).collect();
        assert_eq!(
            q.mean_handle_secs(),
            kept.iter().sum::<u64>() / kept.len() as u64
        );
    }

    #[test]
    fn restore_keeps_the_stored_order() {
        let mut q = Queue::default();
        q.enqueue("a", Asked, 1);
        q.enqueue("b", NegativeSentiment, 2);
        q.enqueue("c", Asked, 3);
        let mut back = Queue::default();
        for w in q.waiting().iter().rev() {
            back.restore(w.clone());
        }
        assert_eq!(back.waiting(), q.waiting());
        assert_eq!(back.enqueue("d", Asked, 4), 4);
    }

    #[test]
    fn claim_respects_presence_and_capacity() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.set_agent("sam", Presence::Away, 3);
        q.enqueue("a", Asked, 1);
        q.enqueue("b", Asked, 2);
        assert_eq!(
            q.claim("sam", "a", false),
            Err(QueueError::NotOnline("sam".into()))
        );
        assert_eq!(
            q.claim("kim", "a", false),
            Err(QueueError::UnknownAgent("kim".into()))
        );
        q.claim("alex", "a", false).unwrap();
        assert_eq!(
            q.claim("alex", "b", false),
            Err(QueueError::AtCapacity("alex".into()))
        );
        assert_eq!(q.position("b"), Some(1));
        q.release("alex", "a", 120).unwrap();
        assert_eq!(
            q.claim("alex", "zzz", false),
            Err(QueueError::NotWaiting("zzz".into()))
        );
        q.claim("alex", "live", true).unwrap();
    }

    #[test]
    fn auto_assignment_fills_free_capacity_oldest_first() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 2);
        q.set_agent("sam", Presence::Online, 1);
        for (i, c) in ["a", "b", "c", "d"].iter().enumerate() {
            q.enqueue(c, Asked, i as i64);
        }
        let got = q.assign();
        assert_eq!(
            got,
            [
                ("alex".into(), "a".into()),
                ("sam".into(), "b".into()),
                ("alex".into(), "c".into())
            ]
        );
        assert_eq!(q.position("d"), Some(1));
    }

    #[test]
    fn auto_assignment_takes_the_least_busy_agent_and_upset_visitors_first() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 3);
        q.set_agent("sam", Presence::Online, 3);
        q.set_agent("kim", Presence::Away, 3);
        q.claim("alex", "held", true).unwrap();
        q.enqueue("calm", Asked, 1);
        q.enqueue("upset", NegativeSentiment, 2);
        assert_eq!(
            q.next_assignment(&[]),
            Some(("sam".into(), "upset".into())),
            "the upset visitor, to the agent holding nothing"
        );
        assert_eq!(
            q.next_assignment(&["upset".into()]),
            Some(("sam".into(), "calm".into()))
        );
        q.set_agent("sam", Presence::Away, 3);
        q.set_agent("alex", Presence::Online, 1);
        assert_eq!(q.next_assignment(&[]), None, "alex is full, sam away");
    }

    #[test]
    fn transfer_moves_the_conversation() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.set_agent("sam", Presence::Online, 1);
        q.set_agent("kim", Presence::Offline, 1);
        q.enqueue("a", Asked, 1);
        q.claim("alex", "a", false).unwrap();
        assert!(
            q.transfer("sam", "alex", "a").is_err(),
            "sam does not hold it"
        );
        assert_eq!(
            q.transfer("alex", "kim", "a"),
            Err(QueueError::NotOnline("kim".into()))
        );
        q.transfer("alex", "sam", "a").unwrap();
        assert!(q.agent("sam").unwrap().active.contains("a"));
        assert!(q.agent("alex").unwrap().active.is_empty());
    }

    #[test]
    fn wait_estimates_from_handle_times_and_agents_online() {
        let mut q = Queue::default();
        q.enqueue("a", Asked, 0);
        assert_eq!(q.estimate_wait_secs(1), None, "nobody online: no number");
        q.set_agent("alex", Presence::Online, 2);
        assert_eq!(
            q.estimate_wait_secs(1),
            Some(0),
            "a free slot serves at once"
        );
        assert_eq!(q.estimate_wait_secs(2), Some(0));
        assert_eq!(
            q.estimate_wait_secs(3),
            Some(300),
            "default handle time before any measured"
        );
        for secs in [100, 200, 300] {
            q.claim("alex", "x", true).unwrap();
            q.release("alex", "x", secs).unwrap();
        }
        assert_eq!(q.mean_handle_secs(), 200);
        assert_eq!(q.estimate_wait_secs(3), Some(200));
        assert_eq!(q.estimate_wait_secs(5), Some(400));
        q.set_agent("sam", Presence::Online, 2);
        assert_eq!(
            q.estimate_wait_secs(5),
            Some(200),
            "more agents, shorter wait"
        );
        q.set_agent("sam", Presence::Away, 2);
        assert_eq!(
            q.estimate_wait_secs(5),
            Some(400),
            "away agents take no one new"
        );
        let p = q.positions();
        assert_eq!(p, vec![("a".into(), 1, Some(0))]);
    }

    #[test]
    fn visitors_are_told_again_when_their_place_changes() {
        use crate::conversation::Event;
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.claim("alex", "busy", true).unwrap();
        for (i, c) in ["a", "b", "c"].iter().enumerate() {
            q.enqueue(c, Asked, i as i64);
        }
        let before = q.positions();
        assert!(
            q.changes(&before).is_empty(),
            "nothing changed, nothing to say"
        );
        q.release("alex", "busy", 60).unwrap();
        q.claim("alex", "a", false).unwrap();
        let told = q.changes(&before);
        assert_eq!(
            told,
            vec![
                (
                    "b".into(),
                    Event::Queued {
                        position: 1,
                        wait_secs: Some(60)
                    }
                ),
                (
                    "c".into(),
                    Event::Queued {
                        position: 2,
                        wait_secs: Some(120)
                    }
                ),
            ]
        );
    }
}
