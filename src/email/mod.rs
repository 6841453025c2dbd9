//! Email through SMTP (`lettre`): the three kinds of mail (an agent's
//! replies to a visitor who is not connected, the transcript a visitor
//! asked for, a notice to the team that a visitor waits with nobody
//! online), written as plain text from a conversation's records in the
//! words of `[texts]`, and one SMTP client built from `[email]`.
//!
//! It owns no state: `app::email` decides when to send, keeps the outbox
//! and retries. This module must not import `store`, `app` or `http`.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::config::{Email, EmailTls};
use crate::conversation::texts::fill;
use crate::conversation::{Event, Record, Texts};

/// How long one SMTP exchange may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One email, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a send failed: a permanent failure (a refused recipient, an address
/// that does not parse) is not retried.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

/// The SMTP client of `[email]`.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right side of Message-IDs: the sender's domain.
    domain: String,
}

impl Smtp {
    /// The client; fails only on a `from` that is not a mailbox.
    pub fn new(cfg: &Email) -> Result<Smtp, String> {
        let mut builder = match cfg.tls {
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
            EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(|e| e.to_string())?,
            EmailTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(|e| e.to_string())?
            }
        }
        .port(cfg.port)
        .timeout(Some(TIMEOUT));
        if let Some(user) = &cfg.username {
            let password = cfg
                .password
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("[email] from {:?}: {e}", cfg.from))?;
        let domain = from.email.domain().to_string();
        Ok(Smtp {
            transport: builder.build(),
            from,
            domain,
        })
    }

    /// Sends `mail` with the Message-ID `<id@domain>` (the same on every
    /// retry, so a receiver can tell a duplicate).
    pub async fn send(&self, id: &str, mail: &Mail) -> Result<(), SendError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient {:?}: {e}", mail.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{id}@{}>", self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// The visitor's name, or the `no_name` text.
fn name_of(log: &[Record], texts: &Texts) -> String {
    let conv = crate::conversation::Conversation::from_log(log);
    conv.visitor
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| texts.no_name.clone())
}

/// The agents' messages after `after_seq` in one email, with the link
/// back into the conversation; `None` when there is none (a reply already
/// told, or lost in a crash).
pub fn reply(log: &[Record], after_seq: u64, to: &str, link: &str, texts: &Texts) -> Option<Mail> {
    // An agent's file is told like a text: its name and size (never its
    // bytes or a link that opens it without the visitor's own session;
    // the conversation's link shows it).
    let replies: Vec<(&str, String)> = log
        .iter()
        .filter(|r| r.seq > after_seq)
        .filter_map(|r| match &r.event {
            Event::AgentMessage { agent, text } => Some((agent.as_str(), text.clone())),
            Event::Attachment {
                agent: Some(agent),
                name,
                size,
                ..
            } => Some((agent.as_str(), file_line(name, *size, texts))),
            _ => None,
        })
        .collect();
    let (agent, _) = replies.first()?;
    let mut body = fill(&texts.email_reply_intro, &[("name", &name_of(log, texts))]);
    body.push_str("\n\n");
    for (agent, text) in &replies {
        body.push_str(&format!("{agent}:\n{}\n\n", quote(text)));
    }
    body.push_str(&fill(&texts.email_link, &[("link", link)]));
    body.push('\n');
    Some(Mail {
        to: to.to_string(),
        subject: fill(&texts.email_reply_subject, &[("agent", agent)]),
        body,
    })
}

/// Every message the visitor saw, in order (`records` are the visitor's
/// view of the log: no internal notes), with the link.
pub fn transcript(records: &[Record], to: &str, link: &str, texts: &Texts) -> Mail {
    let mut body = texts.email_transcript_intro.clone();
    body.push_str("\n\n");
    for r in records {
        let file;
        let line = match &r.event {
            Event::VisitorMessage { text, .. } => Some((texts.widget_you.as_str(), text)),
            // A file where it was sent: who, its name and size.
            Event::Attachment {
                agent, name, size, ..
            } => {
                file = file_line(name, *size, texts);
                Some((agent.as_deref().unwrap_or(&texts.widget_you), &file))
            }
            Event::BotReply { text, .. }
            | Event::Clarification { text, .. }
            | Event::SlotPrompt { text, .. }
            | Event::Fallback { text, .. }
            | Event::HandoffOffered { text, .. } => Some((texts.widget_bot.as_str(), text)),
            Event::AgentMessage { agent, text } => Some((agent.as_str(), text)),
            // Notes never reach this far; other events are not messages.
            _ => None,
        };
        if let Some((who, text)) = line {
            body.push_str(&format!("{} {who}:\n{}\n\n", clock(r.at_ms), quote(text)));
        }
    }
    body.push_str(&fill(&texts.email_link, &[("link", link)]));
    body.push('\n');
    Mail {
        to: to.to_string(),
        subject: texts.email_transcript_subject.clone(),
        body,
    }
}

/// For the team (in English, like the console): a visitor waits and no
/// agent is online.
pub fn waiting(log: &[Record], to: &str, conversation: &str) -> Mail {
    let conv = crate::conversation::Conversation::from_log(log);
    let who = conv
        .visitor
        .name
        .clone()
        .or(conv.visitor.email.clone())
        .unwrap_or_else(|| "A visitor".into());
    let last = log.iter().rev().find_map(|r| match &r.event {
        Event::VisitorMessage { text, .. } => Some(text.as_str()),
        _ => None,
    });
    let mut body = format!("{who} is waiting for a person and no agent is online.\n\n");
    if let Some(text) = last {
        body.push_str(&format!("Their last message:\n{}\n\n", quote(text)));
    }
    body.push_str(&format!(
        "Open the agent console to answer (conversation {conversation}).\n"
    ));
    Mail {
        to: to.to_string(),
        subject: format!("{who} is waiting for a person"),
        body,
    }
}

/// The `email_file` line of a file.
fn file_line(name: &str, size: u64, texts: &Texts) -> String {
    fill(
        &texts.email_file,
        &[("name", name), ("size", &size_text(size))],
    )
}

/// `70 bytes`, `2.4 KB`, `3.1 MB` (1 KB = 1024 bytes).
pub fn size_text(size: u64) -> String {
    const K: f64 = 1024.0;
    match size {
        1 => "1 byte".into(),
        s if s < 1024 => format!("{s} bytes"),
        s if s < 1024 * 1024 => format!("{:.1} KB", s as f64 / K),
        s => format!("{:.1} MB", s as f64 / (K * K)),
    }
}

/// A message's lines, indented so a reader tells them from ours.
fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `YYYY-MM-DD HH:MM UTC`.
fn clock(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Visitor;

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at_ms: 1_795_428_000_000 + seq as i64 * 1000,
            event,
        }
    }

    fn log() -> Vec<Record> {
        vec![
            rec(
                1,
                Event::Started {
                    visitor: Visitor {
                        name: Some("Ada".into()),
                        ..Visitor::default()
                    },
                },
            ),
            rec(
                2,
                Event::VisitorMessage {
                    text: "Where is my parcel?".into(),
                    client_id: "c1".into(),
                },
            ),
            rec(
                3,
                Event::AgentMessage {
                    agent: "Sam".into(),
                    text: "Checking now.".into(),
                },
            ),
            rec(
                4,
                Event::AgentMessage {
                    agent: "Sam".into(),
                    text: "It ships today.\nTracking follows.".into(),
                },
            ),
        ]
    }

    #[test]
    fn a_reply_mail_holds_every_agent_message_after_the_mark_and_the_link() {
        let texts = Texts::default();
        let m = reply(
            &log(),
            2,
            "ada@example.com",
            "https://shop.example/#x",
            &texts,
        )
        .unwrap();
        assert_eq!(m.to, "ada@example.com");
        assert_eq!(m.subject, "Sam replied to your question");
        assert!(m.body.starts_with("Hello Ada,"), "{}", m.body);
        assert!(m.body.contains("  Checking now.\n"));
        assert!(m.body.contains("  It ships today.\n  Tracking follows.\n"));
        assert!(m.body.contains("https://shop.example/#x"));
        assert!(!m.body.contains("Where is my parcel"));
        // Only after the mark; nothing after it: no mail.
        let m = reply(&log(), 3, "a@b.c", "l", &texts).unwrap();
        assert!(!m.body.contains("Checking now."));
        assert!(reply(&log(), 4, "a@b.c", "l", &texts).is_none());
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        for (n, text) in [
            (1, "1 byte"),
            (70, "70 bytes"),
            (1023, "1023 bytes"),
            (2458, "2.4 KB"),
            (3 * 1024 * 1024 + 100 * 1024, "3.1 MB"),
        ] {
            assert_eq!(size_text(n), text);
        }
    }

    #[test]
    fn an_agents_file_is_a_reply_and_a_visitors_is_not() {
        let texts = Texts::default();
        let mut l = log();
        l.push(rec(
            5,
            Event::Attachment {
                id: "a1".into(),
                kind: crate::conversation::AttachmentKind::Png,
                size: 70,
                name: "mine.png".into(),
                agent: None,
            },
        ));
        assert!(reply(&l, 4, "a@b.c", "l", &texts).is_none());
        l.push(rec(
            6,
            Event::Attachment {
                id: "a2".into(),
                kind: crate::conversation::AttachmentKind::Pdf,
                size: 2458,
                name: "label.pdf".into(),
                agent: Some("Sam".into()),
            },
        ));
        let m = reply(&l, 4, "a@b.c", "l", &texts).unwrap();
        assert!(
            m.body.contains("Sam:\n  Sent a file: label.pdf (2.4 KB)\n"),
            "{}",
            m.body
        );
        assert!(!m.body.contains("mine.png"), "{}", m.body);
    }

    #[test]
    fn a_transcript_has_both_sides_in_order() {
        let texts = Texts::default();
        let m = transcript(&log(), "a@b.c", "L", &texts);
        let you = m.body.find("You:\n  Where is my parcel?").unwrap();
        let sam = m.body.find("Sam:\n  Checking now.").unwrap();
        assert!(you < sam, "{}", m.body);
        assert!(m.body.contains("2026-11-23 10:00 UTC"), "{}", m.body);
    }
}
