//! The failures inbox: the visitor messages of a time window the bot did
//! not serve well, grouped into clusters of similar messages.
//!
//! A message is in the inbox when what followed it (up to the next visitor
//! message) holds any of:
//! - `fallback`: the bot did not understand (`Event::Fallback`);
//! - `clarified`: the bot asked "did you mean …?" (`Event::Clarification`);
//! - `not_helpful`: the visitor rated the bot's answer to it not helpful
//!   (the last `Event::Feedback` about that `BotReply` says `helpful: false`);
//! - `handoff`: the bot decided a handoff (`Event::Handoff` with a stored
//!   decision; `handoff_reason` says which: `asked`, `negative_sentiment`,
//!   `low_confidence`, `repeated_fallback`, `intent_action`). A visitor's
//!   button and an agent's takeover (`agent_took_over`) are not the bot's
//!   decision and are left out.
//!
//! Dismissed messages are kept by (conversation, seq) in one store setting
//! ([`DISMISSED_KEY`], a JSON list): small, through the `Store` trait, so
//! every backend keeps it and a backup carries it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::classify::Classifier;
use crate::conversation::{Event, HandoffReason, Record};
use crate::store::{Store, StoreError};

use super::cluster;

/// The store setting that holds the dismissed messages.
pub const DISMISSED_KEY: &str = "improve.dismissed";

/// Agent replies kept per message (the proposed answer for a new intent).
const MAX_REPLIES: usize = 3;

/// Why a message is in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    Fallback,
    Clarified,
    NotHelpful,
    Handoff,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Fallback => "fallback",
            Why::Clarified => "clarified",
            Why::NotHelpful => "not_helpful",
            Why::Handoff => "handoff",
        }
    }
}

/// One failed visitor message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub conversation: String,
    pub seq: u64,
    pub at_ms: i64,
    pub text: String,
    /// Every reason that applies, in `Why` order.
    pub why: Vec<Why>,
    /// The bot's handoff reason when `why` holds `Handoff`.
    pub handoff_reason: Option<HandoffReason>,
    /// The intent the current classifier ranks first, and its score.
    pub nearest: Option<(String, f32)>,
    /// What agents wrote after this message in its conversation (up to the
    /// visitor's next message after an agent spoke; at most three).
    pub agent_replies: Vec<String>,
}

/// Similar failed messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The members, in time order.
    pub messages: Vec<Failed>,
    /// The intent most members rank first (ties: higher mean score, then
    /// id), with the mean of those members' scores for it.
    pub nearest: Option<(String, f32)>,
    /// Distinct agent replies of the members, most frequent first: what a
    /// new intent for the cluster could answer.
    pub proposed_answers: Vec<String>,
}

/// The inbox over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Failed messages in the window that are not dismissed.
    pub total: usize,
    /// How many of them are clustered: the newest, at most the cap.
    pub clustered: usize,
    /// True when the clusters were formed on the semantic layer's
    /// embeddings (false: TF-IDF vectors of words and character n-grams).
    pub by_meaning: bool,
    pub clusters: Vec<Cluster>,
}

/// The most failed messages one inbox clusters: the newest of the window.
/// Grouping compares each message with every cluster so far (quadratic in
/// the worst case), and each clustered message is classified for its
/// nearest intent; 2,000 keeps a request over a busy week bounded
/// (seconds at worst) while covering far more than an admin reads.
pub const MAX_CLUSTERED: usize = 2_000;

/// The failed messages of one conversation's log whose time is in
/// `[from_ms, to_ms)`, in log order (not classified yet).
pub fn failed_in(conversation: &str, log: &[Record], from_ms: i64, to_ms: i64) -> Vec<Failed> {
    // The last feedback about each answer is the visitor's word.
    let mut feedback: BTreeMap<u64, bool> = BTreeMap::new();
    for r in log {
        if let Event::Feedback { about, helpful } = r.event {
            feedback.insert(about, helpful);
        }
    }
    let mut out = Vec::new();
    for (i, r) in log.iter().enumerate() {
        let Event::VisitorMessage { text, .. } = &r.event else {
            continue;
        };
        if r.at_ms < from_ms || r.at_ms >= to_ms {
            continue;
        }
        let mut why = BTreeSet::new();
        let mut handoff_reason = None;
        let rest = &log[i + 1..];
        for f in rest
            .iter()
            .take_while(|f| !matches!(f.event, Event::VisitorMessage { .. }))
        {
            match &f.event {
                Event::Fallback { .. } => {
                    why.insert(Why::Fallback);
                }
                Event::Clarification { .. } => {
                    why.insert(Why::Clarified);
                }
                Event::BotReply { .. } if feedback.get(&f.seq) == Some(&false) => {
                    why.insert(Why::NotHelpful);
                }
                Event::Handoff {
                    reason,
                    decision: Some(_),
                } if *reason != HandoffReason::AgentTookOver => {
                    why.insert(Why::Handoff);
                    handoff_reason = Some(*reason);
                }
                _ => {}
            }
        }
        if why.is_empty() {
            continue;
        }
        let mut agent_replies = Vec::new();
        let mut agent_spoke = false;
        for f in rest {
            match &f.event {
                Event::AgentMessage { text, .. } => {
                    agent_spoke = true;
                    if agent_replies.len() < MAX_REPLIES {
                        agent_replies.push(text.clone());
                    }
                }
                Event::VisitorMessage { .. } if agent_spoke => break,
                _ => {}
            }
        }
        out.push(Failed {
            conversation: conversation.to_string(),
            seq: r.seq,
            at_ms: r.at_ms,
            text: text.clone(),
            why: why.into_iter().collect(),
            handoff_reason,
            nearest: None,
            agent_replies,
        });
    }
    out
}

/// The dismissed messages, as (conversation, seq).
pub fn dismissed(store: &dyn Store) -> Result<BTreeSet<(String, u64)>, StoreError> {
    let Some(bytes) = store.setting(DISMISSED_KEY)? else {
        return Ok(BTreeSet::new());
    };
    serde_json::from_slice::<Vec<(String, u64)>>(&bytes)
        .map(|v| v.into_iter().collect())
        .map_err(|e| StoreError::Corrupt {
            key: DISMISSED_KEY.into(),
            message: e.to_string(),
        })
}

/// Serialises read-modify-write of the dismissed set within a process.
static DISMISS: Mutex<()> = Mutex::new(());

/// Adds messages to the dismissed set; returns how many were new.
pub fn dismiss(store: &dyn Store, messages: &[(String, u64)]) -> Result<usize, StoreError> {
    let _guard = DISMISS.lock().unwrap_or_else(|e| e.into_inner());
    let mut set = dismissed(store)?;
    let before = set.len();
    set.extend(messages.iter().cloned());
    let added = set.len() - before;
    if added > 0 {
        let list: Vec<&(String, u64)> = set.iter().collect();
        let bytes = serde_json::to_vec(&list).map_err(|e| StoreError::Db(e.to_string()))?;
        store.put_setting(DISMISSED_KEY, &bytes)?;
    }
    Ok(added)
}

/// The inbox of `[from_ms, to_ms)`: failed messages not dismissed, the
/// newest [`MAX_CLUSTERED`] of them classified by `classifier` and
/// clustered.
pub fn inbox(
    store: &dyn Store,
    classifier: &Classifier,
    from_ms: i64,
    to_ms: i64,
) -> Result<Inbox, StoreError> {
    inbox_capped(store, classifier, from_ms, to_ms, MAX_CLUSTERED)
}

/// [`inbox`] with at most `cap` messages clustered (the newest); `total`
/// still counts them all. With the semantic layer on, the clusters come
/// from the messages' embeddings (cosine), else from TF-IDF vectors.
pub fn inbox_capped(
    store: &dyn Store,
    classifier: &Classifier,
    from_ms: i64,
    to_ms: i64,
    cap: usize,
) -> Result<Inbox, StoreError> {
    let gone = dismissed(store)?;
    let mut failed = Vec::new();
    for a in store.active(from_ms, to_ms)? {
        let log = match store.read(&a.conversation, 0) {
            Ok(log) => log,
            // Deleted since the index was read.
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        failed.extend(
            failed_in(&a.conversation, &log, from_ms, to_ms)
                .into_iter()
                .filter(|f| !gone.contains(&(f.conversation.clone(), f.seq))),
        );
    }
    failed
        .sort_by(|a, b| (a.at_ms, &a.conversation, a.seq).cmp(&(b.at_ms, &b.conversation, b.seq)));
    let total = failed.len();
    // The newest `cap`, still in time order.
    let mut failed = failed.split_off(total.saturating_sub(cap));
    let texts: Vec<&str> = failed.iter().map(|f| f.text.as_str()).collect();
    // Embedded in batches once; `classify` below finds them in the
    // model's cache of recent texts.
    let embeddings = classifier.embed(&texts);
    let by_meaning = embeddings.is_some();
    let groups = match &embeddings {
        Some(e) => cluster::cluster_embeddings(e),
        None => cluster::cluster(&texts),
    };
    for f in &mut failed {
        f.nearest = classifier
            .classify(&f.text)
            .candidates
            .first()
            .map(|c| (c.intent.clone(), c.score));
    }
    let clusters = groups
        .into_iter()
        .map(|members| {
            let messages: Vec<Failed> = members.iter().map(|&i| failed[i].clone()).collect();
            let nearest = nearest_of(&messages);
            let proposed_answers = proposed(&messages);
            Cluster {
                messages,
                nearest,
                proposed_answers,
            }
        })
        .collect();
    Ok(Inbox {
        from_ms,
        to_ms,
        total,
        clustered: failed.len(),
        by_meaning,
        clusters,
    })
}

fn nearest_of(messages: &[Failed]) -> Option<(String, f32)> {
    let mut by: BTreeMap<&str, (usize, f32)> = BTreeMap::new();
    for (intent, score) in messages.iter().filter_map(|m| m.nearest.as_ref()) {
        let e = by.entry(intent).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += score;
    }
    by.into_iter()
        .map(|(id, (n, sum))| (id, n, sum / n as f32))
        .max_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)).then(b.0.cmp(a.0)))
        .map(|(id, _, mean)| (id.to_string(), mean))
}

fn proposed(messages: &[Failed]) -> Vec<String> {
    let mut count: Vec<(String, usize)> = Vec::new();
    for r in messages.iter().flat_map(|m| &m.agent_replies) {
        match count.iter_mut().find(|(t, _)| t == r) {
            Some((_, n)) => *n += 1,
            None => count.push((r.clone(), 1)),
        }
    }
    // Stable: equal counts keep first-seen order.
    count.sort_by_key(|c| std::cmp::Reverse(c.1));
    count.into_iter().map(|(t, _)| t).take(5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at_ms: seq as i64 * 1000,
            event,
        }
    }

    fn visitor(text: &str) -> Event {
        Event::VisitorMessage {
            text: text.into(),
            client_id: String::new(),
        }
    }

    #[test]
    fn reasons_and_agent_replies() {
        let reply = |intent: &str| Event::BotReply {
            text: "ok".into(),
            intent: Some(intent.into()),
            confidence: 0.9,
            trace: String::new(),
            quick_replies: vec![],
            slots: vec![],
            decision: None,
        };
        let log = vec![
            rec(
                1,
                Event::Started {
                    visitor: Default::default(),
                },
            ),
            rec(2, visitor("hi")),
            rec(3, reply("greeting")),
            rec(4, visitor("do you do gift wrap")),
            rec(
                5,
                Event::Fallback {
                    text: "?".into(),
                    trace: String::new(),
                    decision: None,
                },
            ),
            rec(6, visitor("price of shipping")),
            rec(7, reply("shipping_cost")),
            rec(
                8,
                Event::Feedback {
                    about: 7,
                    helpful: false,
                },
            ),
            rec(9, visitor("person please")),
            rec(
                10,
                Event::Handoff {
                    reason: HandoffReason::Asked,
                    decision: None,
                },
            ),
            rec(
                11,
                Event::AgentMessage {
                    agent: "a".into(),
                    text: "Yes, gift wrap is 3 EUR".into(),
                },
            ),
            rec(12, visitor("thanks")),
            rec(
                13,
                Event::AgentMessage {
                    agent: "a".into(),
                    text: "bye".into(),
                },
            ),
        ];
        let got = failed_in("c1", &log, 0, i64::MAX);
        let seqs: Vec<(u64, Vec<Why>)> = got.iter().map(|f| (f.seq, f.why.clone())).collect();
        // The button handoff (no decision) is not the bot's failure.
        assert_eq!(
            seqs,
            vec![(4, vec![Why::Fallback]), (6, vec![Why::NotHelpful])]
        );
        assert_eq!(
            got[0].agent_replies,
            vec!["Yes, gift wrap is 3 EUR".to_string()]
        );
        // A later "helpful" replaces the "not helpful".
        let mut log2 = log.clone();
        log2.push(rec(
            14,
            Event::Feedback {
                about: 7,
                helpful: true,
            },
        ));
        assert_eq!(failed_in("c1", &log2, 0, i64::MAX).len(), 1);
        // The window is on the message's time.
        assert_eq!(failed_in("c1", &log, 5_000, i64::MAX).len(), 1);
    }

    /// The cap holds: of 12 failed messages only the newest 5 are
    /// clustered (and classified), and both counts are reported.
    #[test]
    fn only_the_newest_are_clustered_and_both_counts_are_reported() {
        use crate::conversation::Visitor;
        use crate::store::MemStore;
        let store = MemStore::new();
        let fallback = || Event::Fallback {
            text: "?".into(),
            trace: String::new(),
            decision: None,
        };
        for n in 0..12i64 {
            let id = format!("c{n:02}");
            let at = 1_000_000 + n * 10_000;
            store.create(&id, at, Visitor::default()).unwrap();
            store
                .append(&id, at + 1, vec![visitor(&format!("gift wrap number {n}"))])
                .unwrap();
            store.append(&id, at + 2, vec![fallback()]).unwrap();
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        let classifier = Classifier::build(&dir, &crate::classify::Model::none()).unwrap();
        let inbox = inbox_capped(&store, &classifier, 0, i64::MAX, 5).unwrap();
        assert_eq!((inbox.total, inbox.clustered), (12, 5));
        assert!(!inbox.by_meaning);
        let mut got: Vec<&str> = inbox
            .clusters
            .iter()
            .flat_map(|c| c.messages.iter().map(|m| m.conversation.as_str()))
            .collect();
        got.sort();
        assert_eq!(got, ["c07", "c08", "c09", "c10", "c11"], "the newest five");
        assert!(inbox
            .clusters
            .iter()
            .flat_map(|c| &c.messages)
            .all(|m| m.nearest.is_some()));
        // Under the cap, all of them.
        let all = inbox_capped(&store, &classifier, 0, i64::MAX, MAX_CLUSTERED).unwrap();
        assert_eq!((all.total, all.clustered), (12, 12));
    }
}
