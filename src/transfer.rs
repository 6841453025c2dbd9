//! `frontdesk store copy`: a whole shop from one store into another (sled
//! to PostgreSQL and back), through the `Store` trait's export, then
//! counted on both sides. It owns the counting and the comparison; which
//! stores to open is `main`'s business, so this module names no backend.

use std::collections::BTreeMap;

use crate::store::{ExportFn, Result, Store};

/// What a store holds, as the `Store` trait shows it, and its export's
/// entries per tree (which also cover what the trait cannot list:
/// settings, client ids, the time index). Report facts are not counted:
/// they are derived, not exported, and rebuilt by the first start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// (what, how many), in a fixed order: conversations, events, agents,
    /// queue, held, outbox, ratings, attachment bytes.
    pub listed: Vec<(&'static str, u64)>,
    /// Export entries per tree.
    pub trees: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts `store` (reads every log and the whole export: as long as a
    /// copy takes).
    pub fn of(store: &dyn Store) -> Result<Counts> {
        let ids = store.conversations()?;
        let mut events = 0u64;
        for id in &ids {
            events += store.read(id, 0)?.len() as u64;
        }
        let listed = vec![
            ("conversations", ids.len() as u64),
            ("events", events),
            ("agents", store.agents()?.len() as u64),
            ("queue", store.waiting()?.len() as u64),
            ("held", store.held()?.len() as u64),
            ("outbox", store.outbox()?.len() as u64),
            ("ratings", store.ratings()?.len() as u64),
            ("attachment bytes", store.attachment_bytes()?),
        ];
        let mut trees = BTreeMap::new();
        store.export(&mut |tree, _, _| {
            *trees.entry(tree.to_string()).or_insert(0) += 1;
            Ok(())
        })?;
        Ok(Counts { listed, trees })
    }

    /// Every line of the two side by side: (what, here, there).
    pub fn rows(&self, other: &Counts) -> Vec<(String, u64, u64)> {
        let mut rows: Vec<(String, u64, u64)> = self
            .listed
            .iter()
            .map(|(what, n)| {
                let there = other.listed.iter().find(|(w, _)| w == what);
                (what.to_string(), *n, there.map_or(0, |(_, m)| *m))
            })
            .collect();
        let trees: std::collections::BTreeSet<&String> =
            self.trees.keys().chain(other.trees.keys()).collect();
        for tree in trees {
            rows.push((
                format!("entries in `{tree}`"),
                self.trees.get(tree).copied().unwrap_or(0),
                other.trees.get(tree).copied().unwrap_or(0),
            ));
        }
        rows
    }

    /// The lines that differ, as sentences; empty: the two agree.
    pub fn differences(&self, other: &Counts) -> Vec<String> {
        self.rows(other)
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .map(|(what, a, b)| format!("{what}: {a} in the source, {b} in the target"))
            .collect()
    }
}

/// Whether `store` holds no shop (no conversation, no agent): what a copy
/// target must be, so nothing of another shop is mixed in.
pub fn is_empty(store: &dyn Store) -> Result<bool> {
    Ok(store.conversations()?.is_empty() && store.agents()?.is_empty())
}

/// Feeds every entry of `from`'s export to `put` (an import into the
/// target); returns how many.
pub fn copy(from: &dyn Store, put: &mut ExportFn<'_>) -> Result<u64> {
    let mut n = 0u64;
    from.export(&mut |tree, key, value| {
        n += 1;
        put(tree, key, value)
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AgentRecord, MemStore, Presence};

    #[test]
    fn counts_name_what_differs() {
        let a = MemStore::default();
        a.create("c1", 1, Default::default()).unwrap();
        a.put_agent(
            "alex",
            &AgentRecord {
                presence: Presence::Offline,
                capacity: 3,
                admin: false,
                token_sha256: String::new(),
                display_name: String::new(),
                disabled: false,
            },
        )
        .unwrap();
        let b = MemStore::default();
        assert!(!is_empty(&a).unwrap() && is_empty(&b).unwrap());
        let (ca, cb) = (Counts::of(&a).unwrap(), Counts::of(&b).unwrap());
        assert_eq!(ca.listed[0], ("conversations", 1));
        assert_eq!(ca.listed[1], ("events", 1));
        let diff = ca.differences(&cb);
        assert!(
            diff.contains(&"conversations: 1 in the source, 0 in the target".to_string()),
            "{diff:?}"
        );
        assert!(diff.contains(&"agents: 1 in the source, 0 in the target".to_string()));
        assert!(ca.differences(&ca).is_empty());
    }
}
