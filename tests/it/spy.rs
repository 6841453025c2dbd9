//! A real sled store in a temp dir, seen through a wrapper that counts the
//! log reads of each conversation and can refuse appends (a full disk, a
//! lost database): what the application does around its store, observed
//! from outside. Every call goes to the real store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use frontdesk::conversation::{Record, Visitor};
use frontdesk::store::Waiting;
use frontdesk::store::{
    AgentRecord, Appended, Batch, ExportFn, FactsRow, RatingRecord, Result, Store, StoreError,
};

pub struct Spy {
    inner: Arc<dyn Store>,
    reads: Mutex<HashMap<String, u64>>,
    /// While set, every append fails as a database error would.
    pub refuse_appends: AtomicBool,
    /// A conversation deleted right after its whole log is next read: a
    /// delete that lands while a reader holds what it read.
    delete_after_read: Mutex<Option<String>>,
}

impl Spy {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Spy> {
        Arc::new(Spy {
            inner,
            reads: Mutex::new(HashMap::new()),
            refuse_appends: AtomicBool::new(false),
            delete_after_read: Mutex::new(None),
        })
    }

    /// Log reads of conversation `id` so far.
    pub fn reads(&self, id: &str) -> u64 {
        self.reads.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    pub fn refuse(&self, on: bool) {
        self.refuse_appends.store(on, Ordering::SeqCst);
    }

    /// Deletes `id` (through the real store) just after its whole log is
    /// next read, once.
    pub fn delete_after_read(&self, id: &str) {
        *self.delete_after_read.lock().unwrap() = Some(id.to_string());
    }
}

impl Store for Spy {
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record> {
        self.inner.create(id, at_ms, visitor)
    }
    fn append_batch(&self, id: &str, batch: Batch) -> Result<Appended> {
        if self.refuse_appends.load(Ordering::SeqCst) {
            return Err(StoreError::Db("refused by the test".into()));
        }
        self.inner.append_batch(id, batch)
    }
    fn read(&self, id: &str, after_seq: u64) -> Result<Vec<Record>> {
        *self
            .reads
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default() += 1;
        let log = self.inner.read(id, after_seq)?;
        let mut armed = self.delete_after_read.lock().unwrap();
        if after_seq == 0 && armed.as_deref() == Some(id) {
            *armed = None;
            self.inner.delete(id)?;
        }
        Ok(log)
    }
    fn conversations(&self) -> Result<Vec<String>> {
        self.inner.conversations()
    }
    fn delete(&self, id: &str) -> Result<()> {
        self.inner.delete(id)
    }
    fn put_waiting(&self, w: &Waiting) -> Result<()> {
        self.inner.put_waiting(w)
    }
    fn remove_waiting(&self, conversation: &str) -> Result<()> {
        self.inner.remove_waiting(conversation)
    }
    fn waiting(&self) -> Result<Vec<Waiting>> {
        self.inner.waiting()
    }
    fn put_agent(&self, name: &str, agent: &AgentRecord) -> Result<()> {
        self.inner.put_agent(name, agent)
    }
    fn agents(&self) -> Result<Vec<(String, AgentRecord)>> {
        self.inner.agents()
    }
    fn ratings(&self) -> Result<Vec<RatingRecord>> {
        self.inner.ratings()
    }
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.setting(key)
    }
    fn put_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        self.inner.put_setting(key, value)
    }
    fn remove_setting(&self, key: &str) -> Result<()> {
        self.inner.remove_setting(key)
    }
    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()> {
        self.inner.put_outbox(id, value)
    }
    fn remove_outbox(&self, id: &str) -> Result<()> {
        self.inner.remove_outbox(id)
    }
    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner.outbox()
    }
    fn put_held(&self, conversation: &str, agent: &str) -> Result<()> {
        self.inner.put_held(conversation, agent)
    }
    fn remove_held(&self, conversation: &str) -> Result<()> {
        self.inner.remove_held(conversation)
    }
    fn held(&self) -> Result<Vec<(String, String)>> {
        self.inner.held()
    }
    fn minutes(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>> {
        self.inner.minutes(from_ms, to_ms)
    }
    fn put_facts(&self, rows: &[FactsRow]) -> Result<()> {
        self.inner.put_facts(rows)
    }
    fn facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FactsRow>> {
        self.inner.facts(from_ms, to_ms)
    }
    fn visitor_starts(
        &self,
        visitor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>> {
        self.inner.visitor_starts(visitor, from_ms, to_ms)
    }
    fn facts_mark(&self) -> Result<Option<Vec<u8>>> {
        self.inner.facts_mark()
    }
    fn put_facts_mark(&self, mark: &[u8]) -> Result<()> {
        self.inner.put_facts_mark(mark)
    }
    fn clear_facts(&self) -> Result<()> {
        self.inner.clear_facts()
    }
    fn drop_facts(&self, id: &str) -> Result<()> {
        self.inner.drop_facts(id)
    }
    fn export(&self, f: &mut ExportFn<'_>) -> Result<()> {
        self.inner.export(f)
    }
    fn remove_agent(&self, name: &str) -> Result<()> {
        self.inner.remove_agent(name)
    }
    fn put_attachment(&self, conversation: &str, attachment: &str, bytes: &[u8]) -> Result<()> {
        self.inner.put_attachment(conversation, attachment, bytes)
    }
    fn attachment(&self, conversation: &str, attachment: &str) -> Result<Option<Vec<u8>>> {
        self.inner.attachment(conversation, attachment)
    }
    fn delete_attachment(&self, conversation: &str, attachment: &str) -> Result<()> {
        self.inner.delete_attachment(conversation, attachment)
    }
    fn attachment_bytes(&self) -> Result<u64> {
        self.inner.attachment_bytes()
    }
}
