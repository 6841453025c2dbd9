//! A real PostgreSQL for tests: a throwaway cluster (initdb + postgres) in
//! a temp dir, listening on a unix socket in that dir only (no port to
//! collide on), started once per test process; `database()` gives each
//! caller a fresh, empty database on it.
//!
//! initdb and postgres refuse to run as root, so as root they run as the
//! `postgres` user (`runuser`). A small shell watcher, in its own process
//! group (a ctrl-c of the tests does not reach it), starts the server,
//! and when the test process is gone (however it ended) stops it and
//! removes the dir: nothing outlives the tests.
//!
//! Without PostgreSQL installed, `database()` is `None` (the tests print
//! that they skipped), unless `FRONTDESK_REQUIRE_PG=1` (CI): then it
//! panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory of `initdb`, `postgres` and `pg_ctl`: PATH first, then
/// the newest of Debian's `/usr/lib/postgresql/*/bin`.
pub fn bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "postgres", "pg_ctl"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(d) = on_path.into_iter().find(|d| has_all(d)) {
        return Some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_all(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn required() -> bool {
    std::env::var("FRONTDESK_REQUIRE_PG").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A running throwaway cluster.
pub struct Cluster {
    /// Holds the socket (and the data dir under `data/`).
    pub dir: PathBuf,
    bin: PathBuf,
    /// `runuser -u postgres --` when we are root, else nothing.
    as_postgres: Vec<String>,
    /// Never waited for: it outlives us on purpose, to clean up after us.
    _watcher: std::process::Child,
}

/// The watcher: initdb, the server in the background, then wait for the
/// test process ($1) to go, stop the server and remove the dir.
const WATCHER: &str = r#"
parent=$1; dir=$2; bin=$3; shift 3
"$@" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    > "$dir/initdb.log" 2>&1 || { touch "$dir/failed"; exit 1; }
"$@" "$bin/postgres" -D "$dir/data" -k "$dir" -c listen_addresses= -p 5432 \
    -c max_connections=300 -c fsync="${FRONTDESK_PG_FSYNC:-off}" \
    > "$dir/postgres.log" 2>&1 &
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
"$@" "$bin/pg_ctl" -D "$dir/data" stop -m immediate -w > /dev/null 2>&1
rm -rf "$dir"
"#;

impl Cluster {
    /// Starts a cluster of its own (for a test that stops it), or `None`
    /// when PostgreSQL is not installed (a panic when it is required).
    /// `durable`: fsync on (a benchmark); tests run without it.
    pub fn start(durable: bool) -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            assert!(
                !required(),
                "PostgreSQL is not installed (apt-get install postgresql) and FRONTDESK_REQUIRE_PG is set"
            );
            eprintln!("skipped: no PostgreSQL (apt-get install postgresql)");
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "frontdesk-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let as_postgres: Vec<String> = if root {
            let ok = Command::new("chown")
                .args(["postgres:", dir.to_str().unwrap()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", dir.display());
            ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        use std::os::unix::process::CommandExt;
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(WATCHER)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&dir)
            .arg(&bin)
            .args(&as_postgres)
            .env("FRONTDESK_PG_FSYNC", if durable { "on" } else { "off" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let c = Cluster {
            dir,
            bin,
            as_postgres,
            _watcher: watcher,
        };
        c.wait_ready();
        Some(c)
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.dir.join("failed").exists() {
                let log = std::fs::read_to_string(self.dir.join("initdb.log")).unwrap_or_default();
                panic!("initdb failed in {}:\n{log}", self.dir.display());
            }
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let log =
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                panic!(
                    "PostgreSQL did not start in 60 s in {}:\n{log}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The connection string of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host={} port=5432 user=postgres dbname={name}",
            self.dir.display()
        )
    }

    /// A fresh, empty database's connection string.
    pub fn database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::SeqCst));
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("the test cluster answers");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        self.url(&name)
    }

    /// `pg_ctl -D <data> <args>`, as the `postgres` user when we are root.
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = match self.as_postgres.split_first() {
            Some((runuser, rest)) => {
                let mut c = Command::new(runuser);
                c.args(rest).arg(&pg_ctl);
                c
            }
            None => Command::new(&pg_ctl),
        };
        let ok = cmd
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pg_ctl {args:?} failed in {}", self.dir.display());
    }

    /// Stops the server (fast shutdown: sessions are cut), as a crash of
    /// the database or its host looks to a client.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts a stopped server again, on the same socket (the watcher
    /// still stops it when the tests end).
    pub fn start_again(&self) {
        // Not the first log: the watcher's shell made that one, as root.
        let log = self.dir.join("postgres-again.log");
        let opts = format!("-k {} -c listen_addresses= -p 5432", self.dir.display());
        self.pg_ctl(&["start", "-w", "-l", log.to_str().unwrap(), "-o", &opts]);
    }
}

/// A fresh, empty database on the process's shared cluster, or `None`
/// (printed as skipped) without PostgreSQL; with `FRONTDESK_REQUIRE_PG=1`
/// that is a panic instead.
pub fn database() -> Option<String> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED
        .get_or_init(|| Cluster::start(false))
        .as_ref()
        .map(Cluster::database)
}
