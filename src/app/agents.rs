//! Agents: credentials (bearer tokens, visitor tokens), presence and
//! capacity, and what an agent does to a conversation (claim, reply, note,
//! transfer, close, give back). Each conversation operation goes through
//! the one write path (`write.rs`).

use super::*;

impl App {
    // ---- credentials -------------------------------------------------

    /// The agent a bearer token belongs to.
    pub fn agent_for(&self, token: &str) -> Option<Agent> {
        let hash = auth::token_hash(token);
        self.inner
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .map(|(name, admin)| Agent {
                name: name.clone(),
                admin: *admin,
            })
    }

    /// Whether `token` is the visitor token of conversation `id`.
    pub fn visitor_may(&self, id: &str, token: &str) -> bool {
        auth::same(&auth::visitor_token(&self.inner.secret, id), token)
    }

    /// Creates (or replaces the token of) an agent; returns the token.
    pub fn add_agent(&self, new: NewAgent) -> Result<CreatedAgent, ApiError> {
        let _w = self
            .inner
            .agent_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let created = add_agent_to(self.inner.store.as_ref(), &new.name, new.admin, new.token)?;
        let (name, hash) = (created.name.clone(), auth::token_hash(&created.token));
        let record = self
            .inner
            .store
            .agents()?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a)
            .ok_or_else(ApiError::internal)?;
        let mut tokens = self.inner.tokens.write().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (n, _)| *n != name);
        tokens.insert(hash, (name.clone(), created.admin));
        drop(tokens);
        self.inner
            .tokens_changed
            .send_modify(|generation| *generation += 1);
        let mut q = self.queue();
        if q.agent(&name).is_none() {
            q.set_agent(&name, record.presence, record.capacity);
        }
        Ok(created)
    }

    // ---- agents --------------------------------------------------------

    pub fn agent_info(&self, agent: &Agent) -> AgentInfo {
        let q = self.queue();
        let a = q.agent(&agent.name);
        AgentInfo {
            name: agent.name.clone(),
            admin: agent.admin,
            presence: a.map_or(Presence::Offline, |a| a.presence),
            capacity: a.map_or(0, |a| a.capacity),
            active: a.map_or(Vec::new(), |a| a.active.iter().cloned().collect()),
        }
    }

    /// Whether `agent` holds conversation `id` (for socket filtering).
    pub fn holds(&self, agent: &str, id: &str) -> bool {
        self.queue()
            .agent(agent)
            .is_some_and(|a| a.active.contains(id))
    }

    pub fn set_presence(&self, agent: &Agent, p: SetPresence) -> Result<AgentInfo, ApiError> {
        if p.capacity.is_some_and(|c| c == 0 || c > 100) {
            return Err(ApiError::invalid("bad_capacity", "capacity is 1 to 100"));
        }
        let before;
        let capacity;
        {
            let mut q = self.queue();
            before = q.positions();
            capacity = p
                .capacity
                .or(q.agent(&agent.name).map(|a| a.capacity))
                .unwrap_or(3);
            q.set_agent(&agent.name, p.presence, capacity);
        }
        let admin = agent.admin;
        let _w = self
            .inner
            .agent_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let token_sha256 = self
            .inner
            .store
            .agents()?
            .into_iter()
            .find(|(n, _)| *n == agent.name)
            .map(|(_, a)| a.token_sha256)
            .unwrap_or_default();
        self.inner.store.put_agent(
            &agent.name,
            &AgentRecord {
                presence: p.presence,
                capacity,
                admin,
                token_sha256,
            },
        )?;
        self.tell_positions(&before, "");
        self.inner.hub.queue_changed();
        Ok(self.agent_info(agent))
    }

    pub fn claim(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Claim {
                agent: agent.name.clone(),
            },
        )
    }

    pub fn agent_message(&self, agent: &Agent, id: &str, t: AgentText) -> Result<Stored, ApiError> {
        self.check_text(&t.text)?;
        self.inner.metrics.inc(Count::Message("agent"));
        self.apply(
            id,
            Input::AgentMessage {
                agent: agent.name.clone(),
                text: t.text,
            },
        )
    }

    pub fn note(&self, agent: &Agent, id: &str, t: AgentText) -> Result<Stored, ApiError> {
        self.check_text(&t.text)?;
        self.apply(
            id,
            Input::Note {
                agent: agent.name.clone(),
                text: t.text,
            },
        )
    }

    pub fn transfer(&self, agent: &Agent, id: &str, t: TransferTo) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Transfer {
                from: agent.name.clone(),
                to: t.to,
            },
        )
    }

    pub fn close(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Close {
                agent: agent.name.clone(),
            },
        )
    }

    pub fn return_to_bot(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::ReturnToBot {
                agent: agent.name.clone(),
            },
        )
    }
}

/// Stores an agent with a new token (given, or generated); an existing
/// agent keeps presence and capacity and gets the new token.
/// `admin`: `None` keeps an existing agent's role (a new one is not an
/// admin). The last admin cannot be demoted, and a token cannot be shared.
pub fn add_agent_to(
    store: &dyn Store,
    name: &str,
    admin: Option<bool>,
    token: Option<String>,
) -> Result<CreatedAgent, ApiError> {
    let name = name.trim().to_string();
    if crate::store::check_id(&name).is_err() {
        return Err(ApiError::invalid(
            "bad_name",
            "an agent name is 1 to 64 letters, digits, `-` or `_`",
        ));
    }
    // The bot signs its own closes `bot`; an agent of that name would be
    // taken for it in reports and replay, and by visitors.
    if name.eq_ignore_ascii_case("bot") {
        return Err(ApiError::invalid(
            "reserved_name",
            "`bot` is the bot's own name; choose another agent name",
        ));
    }
    let token = match token {
        Some(t) if t.len() < 16 || t.len() > 200 || t.chars().any(char::is_whitespace) => {
            return Err(ApiError::invalid(
                "bad_token",
                "a token is 16 to 200 characters without spaces",
            ))
        }
        Some(t) => t,
        None => auth::new_token(),
    };
    let agents = store.agents()?;
    let hash = auth::token_hash(&token);
    if agents
        .iter()
        .any(|(n, a)| *n != name && a.token_sha256 == hash)
    {
        return Err(ApiError::conflict(
            "token_in_use",
            "another agent has this token; choose another",
        ));
    }
    let old = agents.iter().find(|(n, _)| *n == name).map(|(_, a)| a);
    let admin = admin.unwrap_or(old.is_some_and(|a| a.admin));
    if !admin && old.is_some_and(|a| a.admin) && !agents.iter().any(|(n, a)| *n != name && a.admin)
    {
        return Err(ApiError::conflict(
            "last_admin",
            format!("`{name}` is the only admin and stays one"),
        ));
    }
    let record = AgentRecord {
        presence: old.map_or(Presence::Offline, |a| a.presence),
        capacity: old.map_or(3, |a| a.capacity),
        admin,
        token_sha256: hash,
    };
    store.put_agent(&name, &record)?;
    Ok(CreatedAgent {
        name,
        admin,
        token,
        existed: old.is_some(),
    })
}
