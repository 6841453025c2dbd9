//! The schema and its migrations: each migration is a step from version
//! n to n + 1, run once, in order, in one transaction with the version
//! bump, under a transaction-level advisory lock (so nodes starting
//! together wait for one another instead of racing).
//!
//! Values are the bytes sled stores (JSON records), so an export is the
//! same in either backend; the columns beside them are what is queried.
//! Text keys are `COLLATE "C"`: bytewise order, the order sled reads in.
//!
//! Room left for multi-node (later sessions): `conversations.last_seq` is
//! the row an append locks `FOR UPDATE` (the seq is assigned under it), and
//! events are read by `(conversation, seq > n)` on the primary key, which is
//! what a LISTEN/NOTIFY fan-out needs to catch up; the queue has its own
//! rows to claim with `FOR UPDATE SKIP LOCKED`.

use ::postgres::Client;

use super::pg_err;
use crate::store::{Result, StoreError};

/// `pg_advisory_xact_lock` key of migrations (8 ASCII bytes).
const MIGRATE_LOCK: i64 = i64::from_be_bytes(*b"fd-migr8");

/// Migration n (1-based) brings the schema from version n - 1 to n.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE conversations (
    id text COLLATE "C" PRIMARY KEY,
    created_ms bigint NOT NULL,
    -- sled's value (JSON {"created_ms": …}), exported as is.
    meta bytea NOT NULL,
    -- The last seq of the log: appends lock this row and assign seqs
    -- after it, inside their transaction.
    last_seq bigint NOT NULL
);
CREATE TABLE events (
    conversation text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    at_ms bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (conversation, seq)
);
CREATE TABLE client_ids (
    conversation text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    client_id bytea NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (conversation, client_id)
);
CREATE TABLE ratings (
    conversation text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (conversation, seq)
);
CREATE TABLE activity (
    minute bigint NOT NULL,
    conversation text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (minute, conversation)
);
CREATE INDEX activity_conversation ON activity (conversation);
CREATE TABLE attachments (
    conversation text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    attachment text COLLATE "C" NOT NULL,
    part integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (conversation, attachment, part)
);
-- Files are mostly compressed already (images, PDFs): not compressed
-- again, and their length is read without reading them.
ALTER TABLE attachments ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE TABLE queue (
    conversation text COLLATE "C" PRIMARY KEY,
    -- 0 priority, 1 normal: the queue's order is (rank, ticket).
    rank smallint NOT NULL,
    ticket bigint NOT NULL,
    value bytea NOT NULL,
    UNIQUE (rank, ticket)
);
CREATE TABLE held (
    conversation text COLLATE "C" PRIMARY KEY,
    agent text COLLATE "C" NOT NULL
);
CREATE TABLE agents (
    name text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE settings (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE report_facts (
    conversation text COLLATE "C" PRIMARY KEY,
    started_ms bigint NOT NULL,
    visitor bytea,
    data bytea NOT NULL
);
CREATE INDEX report_facts_started ON report_facts (started_ms, conversation);
CREATE INDEX report_facts_visitor ON report_facts (visitor, started_ms, conversation)
    WHERE visitor IS NOT NULL;
CREATE TABLE report_mark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    mark bytea NOT NULL
);
"#,
    // 2: what the nodes share about the work (issue 20): each node's
    // presence rows with its last beat, and the latest handle times of
    // all. Runtime state only: not exported, not copied.
    r#"
CREATE TABLE presence (
    node text COLLATE "C" NOT NULL,
    agent text COLLATE "C" NOT NULL,
    presence text NOT NULL,
    capacity integer NOT NULL,
    consoles integer NOT NULL,
    changed_ms bigint NOT NULL,
    -- The database's clock at the node's last beat (no skew between
    -- nodes' clocks).
    beat_ms bigint NOT NULL,
    PRIMARY KEY (node, agent)
);
CREATE INDEX presence_beat ON presence (beat_ms);
CREATE TABLE handle_times (
    id bigserial PRIMARY KEY,
    secs bigint NOT NULL
);
"#,
];

/// The schema version this build writes and reads.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database to `LATEST`; the version after (a no-op, returning
/// it, when it is there already). A database newer than this build is
/// refused, not touched.
pub fn migrate(client: &mut Client) -> Result<u32> {
    let mut tx = client.transaction().map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS frontdesk_schema (
             one boolean PRIMARY KEY DEFAULT true CHECK (one),
             version integer NOT NULL
         )",
    )
    .map_err(pg_err)?;
    let found: u32 = match tx
        .query_opt("SELECT version FROM frontdesk_schema", &[])
        .map_err(pg_err)?
    {
        Some(row) => u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
        None => 0,
    };
    if found > LATEST {
        return Err(StoreError::Db(format!(
            "the database has schema version {found}, and this frontdesk knows versions up to \
             {LATEST}: run a newer frontdesk"
        )));
    }
    if found == LATEST {
        return Ok(found);
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)
            .map_err(|e| StoreError::Db(format!("migration {}: {}", i + 1, pg_err(e))))?;
    }
    tx.execute(
        "INSERT INTO frontdesk_schema (version) VALUES ($1)
         ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
        &[&(LATEST as i32)],
    )
    .map_err(pg_err)?;
    tx.commit().map_err(pg_err)?;
    Ok(LATEST)
}
