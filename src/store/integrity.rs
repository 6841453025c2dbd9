//! How a damaged store is told from a whole one (issue 15).
//!
//! sled checks each log entry's CRC, but on a damaged file it does one of
//! three things, none of which tells the operator: it panics (a flipped
//! byte: `tried to serialize Uninitialized`), it recovers up to the damage
//! and silently drops everything after it (a cut tail), or, with `db`
//! gone, it makes a new empty store. So the store keeps evidence of its own
//! beside sled's files and checks it on every open:
//!
//! - **A marker file** (`frontdesk-store.json`) names the store (a random
//!   id also kept inside sled) and the last *stamp* (a counter written into
//!   sled and flushed before the marker is written). A marker without `db`,
//!   a sled store with another id or none, or a stamp older than the
//!   marker's means data is missing: refused. (`db`'s size is not compared:
//!   sled shrinks the file itself now and then.)
//! - **A walk** reads every entry of every tree (so sled checks every CRC)
//!   and checks the log's shape: each conversation has a gap-free log from
//!   seq 1, nothing is logged for an unknown conversation, small records
//!   decode. `open` walks keys and raw values; `verify` also decodes every
//!   event. The walk grows with the store, so a clean close *seals* sled's
//!   files and an open that finds them unchanged skips it; a crash leaves
//!   no seal.
//! - **The seal** records each file's identity as the clean close left it:
//!   device, inode, size, and mtime and ctime to the nanosecond. Nothing is
//!   read, so checking it costs two `stat`s whatever the store's size (the
//!   CRC-32 of every byte it replaced was a third of a start at a million
//!   messages: BENCHMARKS.md). It is enough because every way of changing
//!   a file through the file system after the close changes its ctime,
//!   which user space cannot set back (`touch` and `utimensat` set mtime
//!   and atime, and doing so moves ctime too); a copy or a restore from a
//!   backup is a new inode. Any of these makes the open walk. What it no
//!   longer catches: damage below the file system (a disk returning other
//!   bytes than were written), and a write in the same clock tick as the
//!   close's `stat` (ctime's granularity is the kernel's tick, ~4 ms). For
//!   the first, sled checks the CRC of every entry it reads, and damage it
//!   meets is reported (a panic is caught below, an error is an error), not
//!   silently served; `frontdesk verify` reads everything on demand. The
//!   second needs a writer racing the close on our own files. Where there
//!   is no ctime (not unix), the seal is the files' CRC-32s, as before.
//!   Seals written by earlier versions (CRC-32s) are still checked.
//! - **Panics inside sled** are caught and reported as damage.
//!
//! The stamp is renewed at most once a second while writing and on a clean
//! close, so damage to what was written in the last second before a crash
//! can go unnoticed: that is the limit of doing this outside sled.

use std::collections::HashSet;
use std::path::Path;

use super::sled::{key_owner, seq_value, split_seq_key};
use super::{Result, StoreError};
use crate::conversation::Record;

/// The marker's file name, beside sled's own files.
pub const MARKER: &str = "frontdesk-store.json";
/// Settings keys kept inside sled.
pub const STORE_ID: &str = "_store_id";
pub const STAMP: &str = "_stamp";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub format: u32,
    pub store_id: String,
    pub stamp: u64,
    /// `db`'s length when the stamp was written: for people reading the
    /// marker (sled may shrink the file, so it proves nothing).
    pub db_bytes: u64,
    /// Written at a clean close: sled's files as they were then. If they
    /// are byte for byte the same at the next open, the walk is skipped.
    #[serde(default)]
    pub seal: Option<Vec<Sealed>>,
}

/// One file of a seal: its identity, or (where there is none, and in
/// seals of earlier versions) its CRC-32.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub name: String,
    pub bytes: u64,
    /// The bytes' CRC-32 in a seal without identity; 0 (unused) in one
    /// with it. Always written: earlier versions require the field, and
    /// finding other bytes than a CRC of 0 they walk, so a store sealed by
    /// this version still opens after a downgrade.
    #[serde(default)]
    pub crc32: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// What the file system says about a file, without reading it. Any write,
/// truncation, `touch`, rename over it or restore changes one of these.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
    pub ctime_s: i64,
    pub ctime_ns: i64,
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity {
        dev: m.dev(),
        ino: m.ino(),
        mtime_s: m.mtime(),
        mtime_ns: m.mtime_nsec(),
        ctime_s: m.ctime(),
        ctime_ns: m.ctime_nsec(),
    })
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> Option<Identity> {
    None
}

/// The files a seal covers: sled's log and config (snapshots are rewritten
/// by sled itself and checked by it).
const SEALED: [&str; 2] = ["db", "conf"];

/// The seal of sled's files in `dir` as they are now: their identities
/// (see the module's notes), or their checksums where there are none.
pub fn seal(dir: &Path) -> std::io::Result<Vec<Sealed>> {
    SEALED
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let meta = std::fs::metadata(&path)?;
            let sealed = match identity(&meta) {
                Some(identity) => Sealed {
                    name: name.to_string(),
                    bytes: meta.len(),
                    crc32: 0,
                    identity: Some(identity),
                },
                None => {
                    let (bytes, crc32) = checksum(&path)?;
                    Sealed {
                        name: name.to_string(),
                        bytes,
                        crc32,
                        identity: None,
                    }
                }
            };
            Ok(sealed)
        })
        .collect()
}

/// Below this a file is checksummed on one thread.
const SPLIT_BYTES: u64 = 16 << 20;

/// A file's length and CRC-32. A large file is cut into one piece per core,
/// checksummed at once and the pieces' CRCs combined (the same value as
/// one pass: a store's seal is checked on every start, and at a million
/// messages one pass was most of the start).
fn checksum(path: &Path) -> std::io::Result<(u64, u32)> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let threads = if len < SPLIT_BYTES {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as u64
    };
    let piece = len.div_ceil(threads).max(1);
    let part = |start: u64| -> std::io::Result<(crc32fast::Hasher, u64)> {
        let end = (start + piece).min(len);
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = start;
        while at < end {
            let want = ((end - at) as usize).min(buf.len());
            let n = read_at(&file, &mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            at += n as u64;
        }
        Ok((h, at - start))
    };
    let parts: Vec<std::io::Result<(crc32fast::Hasher, u64)>> = std::thread::scope(|s| {
        let part = &part;
        let running: Vec<_> = (1..threads)
            .map(|i| s.spawn(move || part(i * piece)))
            .collect();
        let mut done = vec![part(0)];
        done.extend(running.into_iter().map(|t| {
            t.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a checksum thread failed")))
        }));
        done
    });
    let mut h = crc32fast::Hasher::new();
    let mut bytes = 0;
    for p in parts {
        let (piece, n) = p?;
        h.combine(&piece);
        bytes += n;
    }
    Ok((bytes, h.finalize()))
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

/// Whether sled's files are as sealed: the same identities, or for a seal
/// of checksums, the same bytes (cheap checks first).
pub fn seal_holds(dir: &Path, sealed: &[Sealed]) -> bool {
    let covers_all = SEALED
        .iter()
        .all(|name| sealed.iter().any(|s| s.name == *name));
    let metas: Option<Vec<std::fs::Metadata>> = sealed
        .iter()
        .map(|s| std::fs::metadata(dir.join(&s.name)).ok())
        .collect();
    let Some(metas) = metas.filter(|_| covers_all) else {
        return false;
    };
    let same = |s: &Sealed, m: &std::fs::Metadata| match &s.identity {
        Some(id) => identity(m).as_ref() == Some(id),
        None => checksum(&dir.join(&s.name)).is_ok_and(|now| now == (s.bytes, s.crc32)),
    };
    // Sizes first: a changed size needs no checksum.
    sealed.iter().zip(&metas).all(|(s, m)| m.len() == s.bytes)
        && sealed.iter().zip(&metas).all(|(s, m)| same(s, m))
}

pub fn damaged(dir: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged {
        dir: dir.display().to_string(),
        what: what.to_string(),
    }
}

/// The marker, if there is one; an unreadable one is damage.
pub fn read_marker(dir: &Path) -> Result<Option<Marker>> {
    let path = dir.join(MARKER);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| damaged(dir, format!("{MARKER} is unreadable ({e})"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(damaged(dir, format!("{MARKER} cannot be read ({e})"))),
    }
}

/// Writes the marker durably: a temp file, fsync, rename.
pub fn write_marker(dir: &Path, m: &Marker) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(m).unwrap_or_default())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(MARKER))
}

pub fn db_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).map_or(0, |m| m.len())
}

/// Whether any of sled's files are in `dir`.
pub fn has_sled_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == "db" || n == "conf" || n.starts_with("snap.") || n == "blobs"
        })
}

/// The checks that need no sled: a marker without `db`, or a `db` cut
/// short, is refused before sled can "recover" it.
pub fn check_files(dir: &Path, marker: Option<&Marker>) -> Result<()> {
    let db = dir.join("db");
    match marker {
        Some(m) => {
            if !db.exists() {
                return Err(damaged(
                    dir,
                    "its `db` file is missing, though the directory held a store",
                ));
            }
            // `db`'s size is recorded but not compared: sled gives free
            // segments at its end back to the file system, while serving
            // and while recovering, so a shorter `db` is no proof of damage
            // (a cut tail loses the newest stamp, which is).
            let _ = m.db_bytes;
        }
        None if has_sled_files(dir) && !db.exists() => {
            return Err(damaged(
                dir,
                "its `db` file is missing while sled's other files are there",
            ));
        }
        None => {}
    }
    Ok(())
}

thread_local! {
    /// Set while this thread runs `quietly`: its panics are not printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into an error message, without printing that
/// panic (it is reported as damage instead). A hook installed once
/// forwards every other thread's panics to the hook that was there before.
pub fn quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic inside sled".into())
    })
}

/// What a walk found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Walk {
    pub conversations: u64,
    pub events: u64,
    /// Damage: each a sentence.
    pub problems: Vec<String>,
    /// Harmless oddities (`verify` reports them; `open` does not refuse).
    pub notes: Vec<String>,
}

/// The trees a walk reads.
pub struct Trees<'a> {
    pub conversations: &'a sled::Tree,
    pub events: &'a sled::Tree,
    pub client_ids: &'a sled::Tree,
    pub small: Vec<(&'static str, &'a sled::Tree)>,
}

/// Reads every entry; `full` also decodes every event.
pub fn walk(t: &Trees<'_>, full: bool) -> Walk {
    let mut w = Walk::default();
    const MAX: usize = 50;
    let problem = |w: &mut Walk, p: String| {
        if w.problems.len() < MAX {
            w.problems.push(p);
        }
    };
    let mut known: HashSet<Vec<u8>> = HashSet::new();
    for item in t.conversations.iter() {
        match item {
            Ok((k, _)) => {
                known.insert(k.to_vec());
                w.conversations += 1;
            }
            Err(e) => problem(&mut w, format!("tree `conversations` is unreadable: {e}")),
        }
    }
    let mut with_log: HashSet<Vec<u8>> = HashSet::new();
    let mut last_seq: std::collections::HashMap<Vec<u8>, u64> = Default::default();
    let mut current: Option<(Vec<u8>, u64)> = None;
    for item in t.events.iter() {
        let (k, v) = match item {
            Ok(kv) => kv,
            Err(e) => {
                problem(&mut w, format!("tree `events` is unreadable: {e}"));
                break;
            }
        };
        w.events += 1;
        let Some((id, seq)) = split_seq_key(&k) else {
            problem(
                &mut w,
                format!("an event key of {} bytes is malformed", k.len()),
            );
            continue;
        };
        let name = String::from_utf8_lossy(id).into_owned();
        let expected = match &current {
            Some((c, last)) if c.as_slice() == id => last + 1,
            _ => 1,
        };
        if seq != expected {
            problem(
                &mut w,
                format!(
                    "conversation {name}: event {seq} follows event {}",
                    expected - 1
                ),
            );
        }
        if expected == 1 {
            if !known.contains(id) {
                problem(
                    &mut w,
                    format!("conversation {name} has events but no entry"),
                );
            }
            with_log.insert(id.to_vec());
        }
        current = Some((id.to_vec(), seq));
        last_seq.insert(id.to_vec(), seq);
        if full {
            if let Err(e) = serde_json::from_slice::<Record>(&v) {
                problem(&mut w, format!("conversation {name}, event {seq}: {e}"));
            }
        }
    }
    for id in known.difference(&with_log) {
        problem(
            &mut w,
            format!(
                "conversation {} has no events (its log is gone)",
                String::from_utf8_lossy(id)
            ),
        );
    }
    let mut orphans = 0;
    for item in t.client_ids.iter() {
        match item {
            Ok((k, v)) => {
                let seq = seq_value(&v).unwrap_or(u64::MAX);
                if last_seq.get(key_owner(&k)).is_none_or(|l| seq > *l) {
                    orphans += 1;
                }
            }
            Err(e) => {
                problem(&mut w, format!("tree `client_ids` is unreadable: {e}"));
                break;
            }
        }
    }
    if orphans > 0 {
        // Left by a crash under versions before appends were atomic; a
        // retry is no longer mistaken for a duplicate because of one.
        w.notes.push(format!(
            "{orphans} client ids name no stored message (harmless)"
        ));
    }
    for (name, tree) in &t.small {
        for item in tree.iter() {
            match item {
                Ok((k, v)) => {
                    // Settings, the time index and attachments hold raw
                    // bytes; the others JSON.
                    if !matches!(*name, "settings" | "activity" | "attachments")
                        && serde_json::from_slice::<serde_json::Value>(&v).is_err()
                    {
                        problem(
                            &mut w,
                            format!(
                                "tree `{name}`: the entry {:?} does not decode",
                                String::from_utf8_lossy(&k)
                            ),
                        );
                    }
                }
                Err(e) => {
                    problem(&mut w, format!("tree `{name}` is unreadable: {e}"));
                    break;
                }
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces' combined CRC is one pass's, at every size around the
    /// split and with a length that does not divide evenly.
    #[test]
    fn a_checksum_in_pieces_equals_one_pass() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for len in [0, 1, SPLIT_BYTES - 1, SPLIT_BYTES, SPLIT_BYTES * 2 + 12_345] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let path = dir.path().join("f");
            std::fs::write(&path, &data).expect("write");
            assert_eq!(
                checksum(&path).expect("checksum"),
                (len, crc32fast::hash(&data)),
                "{len} bytes"
            );
        }
    }

    /// Earlier versions read a seal as name, bytes and CRC-32 (all
    /// required): a seal of identities must still read that way, so that
    /// after a downgrade the store walks instead of being refused for an
    /// unreadable marker.
    #[test]
    fn a_seal_of_identities_reads_as_an_earlier_versions_seal() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct EarlierSealed {
            name: String,
            bytes: u64,
            crc32: u32,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct EarlierMarker {
            format: u32,
            store_id: String,
            stamp: u64,
            db_bytes: u64,
            #[serde(default)]
            seal: Option<Vec<EarlierSealed>>,
        }
        let dir = tempfile::tempdir().expect("temp dir");
        for name in SEALED {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        let m = Marker {
            format: 1,
            store_id: "s".into(),
            stamp: 3,
            db_bytes: 2,
            seal: Some(seal(dir.path()).expect("seal")),
        };
        let json = serde_json::to_vec_pretty(&m).expect("json");
        let earlier: EarlierMarker =
            serde_json::from_slice(&json).expect("an earlier version reads it");
        assert_eq!(earlier.seal.map(|s| s.len()), Some(SEALED.len()));
        assert!(seal_holds(
            dir.path(),
            m.seal.as_deref().unwrap_or_default()
        ));
    }
}
