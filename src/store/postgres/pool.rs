//! A small fixed-size pool of PostgreSQL connections: a checkout waits at
//! most a deadline (then `StoreError::Unavailable`, never a hang), a new
//! connection is made on demand within `connect_timeout`, and a connection
//! that broke is dropped, not handed out again. Written here rather than
//! taken from a crate: it is about a hundred lines, and r2d2 would add a
//! dependency tree for it.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::{Client, Config, NoTls, Statement};

use super::pg_err;
use crate::store::{Result, StoreError};

/// A connection idle longer than this is checked with a round trip before
/// it is handed out: the client notices a server that went away only when
/// it next talks to it, and the caller should not get that error.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Statements with no end (a lock wait behind a stuck peer) are cut here,
/// and a session left in a transaction by a frozen client lets go.
const SESSION_SETUP: &str =
    "SET statement_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s'";

/// One pooled session: the client and its prepared statements.
pub(crate) struct Session {
    pub client: Client,
    /// Statements prepared on this session, by their text: a statement is
    /// parsed once per session instead of once per call (a round trip).
    stmts: HashMap<&'static str, Statement>,
    /// When it was last returned, for `CHECK_AFTER_IDLE`.
    idle_since: Instant,
}

impl Session {
    /// The prepared statement for `sql`, preparing it through `c` (the
    /// client or a transaction of it) the first time.
    pub fn stmt<C: ::postgres::GenericClient>(
        stmts: &mut HashMap<&'static str, Statement>,
        c: &mut C,
        sql: &'static str,
    ) -> Result<Statement> {
        if let Some(s) = stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql).map_err(pg_err)?;
        stmts.insert(sql, s.clone());
        Ok(s)
    }

    /// The client and the statement cache, borrowed apart (a transaction
    /// borrows the client while statements are looked up).
    pub fn parts(&mut self) -> (&mut Client, &mut HashMap<&'static str, Statement>) {
        (&mut self.client, &mut self.stmts)
    }
}

struct State {
    idle: Vec<Session>,
    /// Sessions in existence or being connected (idle + out + connecting).
    open: usize,
}

pub(crate) struct Pool {
    config: Config,
    max: usize,
    checkout: Duration,
    state: Mutex<State>,
    /// Signalled whenever a session is returned or a slot freed.
    freed: Condvar,
}

/// A checked-out session; back to the pool on drop (or dropped, if broken).
pub(crate) struct Conn<'a> {
    pool: &'a Pool,
    session: Option<Session>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a conn holds its session until dropped")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a conn holds its session until dropped")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(mut s) = self.session.take() else {
            return;
        };
        let mut st = self.pool.lock();
        if s.client.is_closed() {
            st.open -= 1;
            drop(st);
            drop(s);
        } else {
            s.idle_since = Instant::now();
            st.idle.push(s);
        }
        self.pool.freed.notify_one();
    }
}

impl Pool {
    pub fn new(
        mut config: Config,
        max: usize,
        checkout: Duration,
        connect_timeout: Duration,
    ) -> Pool {
        config.connect_timeout(connect_timeout);
        // A peer that vanished (a cable, not a clean close) is noticed in
        // about this long instead of the kernel's 15 minutes.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        Pool {
            config,
            max: max.max(1),
            checkout,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A poisoned lock means a thread panicked while updating two counters
    /// that are still consistent (nothing else happens under it).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session outside the pool (the node lock's, a migration's).
    pub fn connect(&self) -> Result<Client> {
        connect(&self.config)
    }

    /// The idle sessions, taken out (the store is being dropped: they are
    /// closed elsewhere).
    pub fn take_idle(&self) -> Vec<Session> {
        let mut st = self.lock();
        st.open -= st.idle.len();
        std::mem::take(&mut st.idle)
    }

    /// A session within `checkout`, or `StoreError::Unavailable`.
    pub fn get(&self) -> Result<Conn<'_>> {
        let deadline = Instant::now() + self.checkout;
        let mut st = self.lock();
        loop {
            if let Some(mut s) = st.idle.pop() {
                drop(st);
                let stale = s.idle_since.elapsed() >= CHECK_AFTER_IDLE;
                if s.client.is_closed() || (stale && s.client.is_valid(self.checkout).is_err()) {
                    drop(s);
                    st = self.lock();
                    st.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    session: Some(s),
                });
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return match connect(&self.config) {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        session: Some(Session {
                            client,
                            stmts: HashMap::new(),
                            idle_since: Instant::now(),
                        }),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "no database connection was free within {} ms (a pool of {})",
                    self.checkout.as_millis(),
                    self.max
                )));
            }
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn connect(config: &Config) -> Result<Client> {
    let mut client = config.connect(NoTls).map_err(pg_err)?;
    client.batch_execute(SESSION_SETUP).map_err(pg_err)?;
    Ok(client)
}
