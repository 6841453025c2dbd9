//! Regression tests from the hostile review of issue 15's store work: each
//! failed on the code before its fix (the review's branch has them as
//! found).

use std::path::Path;

use super::store_damage::copy_dir;

use frontdesk::store::{SledStore, Store};

fn db_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).map_or(0, |m| m.len())
}

fn marker_bytes(dir: &Path) -> u64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("frontdesk-store.json")).unwrap()).unwrap();
    m["db_bytes"].as_u64().unwrap()
}

/// sled frees and truncates its tail segments when their data is gone
/// (`SegmentAccountant::truncate`), so `db` does shrink: a check that `db`
/// never shrinks (the first version of the marker had one) then refused
/// the store that a crash at that moment left.
#[test]
fn db_shrinking_is_not_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = SledStore::open(&dir).unwrap();
    let big = format!("\"{}\"", "x".repeat(4 * 1024)).into_bytes();
    for i in 0..4000 {
        s.put_outbox(&format!("k{i:04}"), &big).unwrap();
    }
    let peak = db_len(&dir);
    for i in 0..4000 {
        s.remove_outbox(&format!("k{i:04}")).unwrap();
    }
    // Keep writing small things for a while, as a server does; the stamp
    // is renewed every second on a flush.
    let mut shrunk_at = None;
    let t0 = std::time::Instant::now();
    let secs: u64 = std::env::var("REVIEW_SECS").map_or(6, |v| v.parse().unwrap());
    let mut round = 0u64;
    while t0.elapsed() < std::time::Duration::from_secs(secs) && shrunk_at.is_none() {
        // Churn, as webhook deliveries do: put a batch, remove it.
        round += 1;
        for i in 0..400 {
            s.put_outbox(&format!("r{round}-{i:04}"), &big).unwrap();
            let (len, m) = (db_len(&dir), marker_bytes(&dir));
            if len < m {
                // A kill -9 now leaves exactly these files (all flushed): copy them.
                let crash = tmp.path().join("crash");
                copy_dir(&dir, &crash);
                if db_len(&crash) < marker_bytes(&crash) {
                    shrunk_at = Some((len, m, crash));
                    break;
                }
                let _ = std::fs::remove_dir_all(&crash);
            }
        }
        for i in 0..400 {
            s.remove_outbox(&format!("r{round}-{i:04}")).unwrap();
        }
    }
    eprintln!(
        "peak {peak}, now {}, marker {}",
        db_len(&dir),
        marker_bytes(&dir)
    );
    drop(s);
    let reopened = SledStore::open(&dir);
    eprintln!("clean reopen: {:?}", reopened.as_ref().err());
    drop(reopened);
    if let Some((len, m, crash)) = shrunk_at {
        let r = SledStore::open(&crash);
        assert!(
            r.is_ok(),
            "db was {len} bytes while the marker said {m}; the store a crash left then is refused: {:?}",
            r.err()
        );
    }
}

/// sled truncates `db` while it opens (tail segments freed by deletions),
/// before `SledStore::open` has walked the store and renewed the marker. A
/// crash (kill -9, power cut, OOM) during that walk - seconds on a large
/// store - leaves `db` shorter than the marker's `db_bytes`, and every later
/// open refuses the healthy store as "cut short". The crash is simulated by
/// letting sled open a copy (exactly what `inspect` does first) and stopping.
#[test]
fn crash_during_open_after_sled_truncated_is_not_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let big = format!("\"{}\"", "x".repeat(4 * 1024)).into_bytes();
    for round in 0..12 {
        // The crash: a copy of the closed store, opened by sled only.
        let crash = tmp.path().join(format!("crash{round}"));
        if dir.exists() {
            copy_dir(&dir, &crash);
            let before = db_len(&crash);
            let db = sled::Config::new()
                .path(&crash)
                .flush_every_ms(None)
                .open()
                .unwrap();
            drop(db);
            std::thread::sleep(std::time::Duration::from_millis(200));
            let after = db_len(&crash);
            if after < before {
                let r = SledStore::open(&crash);
                assert!(
                    r.is_ok(),
                    "round {round}: sled's own open shrank db {before} -> {after}; a crash before the \
                     marker's renewal leaves a store that open refuses: {:?}",
                    r.err()
                );
            }
        }
        let s = SledStore::open(&dir).unwrap();
        if round == 0 {
            for i in 0..4000 {
                s.put_outbox(&format!("k{i:04}"), &big).unwrap();
            }
        } else if round == 1 {
            for i in 0..4000 {
                s.remove_outbox(&format!("k{i:04}")).unwrap();
            }
        } else {
            for i in 0..500 {
                s.put_setting("tick", format!("{i}").as_bytes()).unwrap();
            }
        }
        drop(s);
    }
}

#[test]
fn offline_backup_never_deletes_an_existing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("frontdesk.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n",
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")),
            data
        ),
    )
    .unwrap();
    // The server holds the store (its sled lock).
    let live = SledStore::open(&data).unwrap();
    let target = tmp.path().join("backups");
    std::fs::create_dir_all(target.join("monday")).unwrap();
    std::fs::write(target.join("monday/keep.txt"), "an older backup").unwrap();
    for dir in [&target, &data] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["store", "backup"])
            .arg(dir)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(
            dir.exists(),
            "`store backup {}` failed ({}) and deleted the directory",
            dir.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    drop(live);
}

mod live {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub struct Srv {
        pub child: Child,
        pub addr: String,
        pub admin: String,
        _tmp: tempfile::TempDir,
    }

    impl Drop for Srv {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn start() -> Srv {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("frontdesk.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n\
                 [limits]\nrequests_per_ip_per_minute = 100000\nwebsockets_per_ip = 100000\nwebsockets_total = 100000\n",
                std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")),
                tmp.path().join("data")
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("FRONTDESK_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut admin, mut addr) = (None, None);
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "server ended");
            let t = line.trim();
            if t.starts_with("fd_") {
                admin = Some(t.to_string());
            }
            if let Some(a) = t.strip_prefix("frontdesk listening on http://") {
                addr = Some(a.to_string());
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        Srv {
            child,
            addr: addr.unwrap(),
            admin: admin.unwrap(),
            _tmp: tmp,
        }
    }

    /// POST /api/v1/admin/agents {"name": name}: the new token.
    pub async fn new_agent(addr: &str, admin: &str, name: &str) -> String {
        token_from(
            addr,
            admin,
            "/api/v1/admin/agents",
            &format!("{{\"name\":\"{name}\"}}"),
        )
        .await
    }

    /// POST /api/v1/admin/agents/{name}/token: the new token.
    pub async fn rotate(addr: &str, admin: &str, name: &str) -> String {
        token_from(
            addr,
            admin,
            &format!("/api/v1/admin/agents/{name}/token"),
            "",
        )
        .await
    }

    /// The `token` of what an admin POST of `body` to `path` answers.
    async fn token_from(addr: &str, admin: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        let json = &all[all.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{all}"))
            .to_string()
    }

    /// Opens an agent socket; Some(reader) if the server answered 101.
    pub async fn agent_socket(addr: &str, token: &str) -> Option<tokio::io::BufReader<TcpStream>> {
        let s = TcpStream::connect(addr).await.ok()?;
        let mut r = tokio::io::BufReader::new(s);
        r.get_mut()
            .write_all(
                format!(
                    "GET /api/v1/agent/ws?token={token} HTTP/1.1\r\nHost: {addr}\r\n\
                     Upgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .ok()?;
        let mut line = String::new();
        r.read_line(&mut line).await.ok()?;
        if !line.starts_with("HTTP/1.1 101") {
            return None;
        }
        while line != "\r\n" {
            line.clear();
            r.read_line(&mut line).await.ok()?;
        }
        Some(r)
    }

    /// Reads frames until a Close (its code) or `wait` passes (None).
    pub async fn close_code(
        r: &mut tokio::io::BufReader<TcpStream>,
        wait: Duration,
    ) -> Option<u16> {
        tokio::time::timeout(wait, async {
            loop {
                let mut head = [0u8; 2];
                r.read_exact(&mut head).await.ok()?;
                let len = match head[1] & 0x7f {
                    126 => r.read_u16().await.ok()? as u64,
                    127 => r.read_u64().await.ok()?,
                    n => n as u64,
                };
                let mut p = vec![0; len as usize];
                r.read_exact(&mut p).await.ok()?;
                if head[0] & 0x0f == 0x8 {
                    return Some(u16::from_be_bytes([p[0], p[1]]));
                }
            }
        })
        .await
        .unwrap_or(None)
    }
}

/// An agent socket whose handshake overlaps a token rotation: the token is
/// checked in the HTTP handler, but `tokens_changed` is subscribed only in
/// `agent_loop`, after the upgrade. A rotation between the two is marked
/// seen at subscription, so the socket streams on with a revoked token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_during_handshake_still_closes_the_socket() {
    let srv = live::start();
    let (addr, admin) = (srv.addr.clone(), srv.admin.clone());
    let mut leaked = 0;
    let mut opened = 0;
    live::new_agent(&addr, &admin, "alex").await;
    for round in 0..15 {
        let old = live::rotate(&addr, &admin, "alex").await;
        let sockets: Vec<_> = (0..40)
            .map(|_| {
                let (addr, old) = (addr.clone(), old.clone());
                tokio::spawn(async move {
                    let mut r = live::agent_socket(&addr, &old).await?;
                    Some(live::close_code(&mut r, std::time::Duration::from_secs(3)).await)
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(round % 5)).await;
        let _new = live::rotate(&addr, &admin, "alex").await;
        for s in sockets {
            if let Some(code) = s.await.unwrap() {
                opened += 1;
                if code != Some(1008) {
                    leaked += 1;
                }
            }
        }
    }
    assert_eq!(
        leaked, 0,
        "{leaked} of {opened} sockets opened with the old token were still open 3 s after its rotation"
    );
}

/// `BackupWriter::feed` keeps every byte of an unfinished frame and, on
/// each call, copies all of them again (`buf[at..].to_vec()`): a frame
/// whose header claims up to 4 GiB (u32 lengths, no cap) makes the CLI
/// buffer whatever the server sends, with quadratic copying. Fed in the
/// 16 KiB pieces hyper hands over, 32 MiB of a never-ending frame take
/// seconds; a broken or hostile server can make it take hours and GiBs.
#[test]
fn feed_rejects_an_absurd_frame_and_does_not_go_quadratic() {
    use frontdesk::store::BackupWriter;
    let tmp = tempfile::tempdir().unwrap();
    let mut w = BackupWriter::create(&tmp.path().join("b")).unwrap();
    let mut head = vec![6u8];
    head.extend_from_slice(b"events");
    head.extend_from_slice(&u32::MAX.to_be_bytes()); // a 4 GiB key
    let refused_at_once = w.feed(&head).is_err();
    let piece = vec![0u8; 16 * 1024];
    let t = std::time::Instant::now();
    let mut fed = 0usize;
    let mut refused = refused_at_once;
    while fed < 32 << 20 && !refused {
        refused = w.feed(&piece).is_err();
        fed += piece.len();
    }
    let took = t.elapsed();
    assert!(
        refused && took < std::time::Duration::from_secs(1),
        "a frame claiming a 4 GiB key was buffered ({} MiB, {took:?}) instead of refused",
        fed >> 20
    );
}
