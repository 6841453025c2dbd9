//! Files in a conversation: a visitor's photo of a damaged parcel, an
//! agent's return label. Images (PNG, JPEG, GIF, WebP) and PDFs only,
//! recognised by their first bytes (`AttachmentKind::sniff`), never by
//! the name or the content type a client claims; at most `[attachments]
//! max_bytes`. The bytes go to the store first (durably), then the
//! `attachment` event takes the one write path, so a crash leaves at worst
//! bytes no event names, never an event without its bytes; a refused event
//! deletes the bytes again. Deleting the conversation deletes them
//! (`Store::delete`).

use super::*;
use crate::conversation::AttachmentKind;
use std::collections::HashMap;

/// The bytes of all attachments stored, for `[attachments]
/// max_total_bytes`: summed from the store at the first upload after a
/// start (`Store::attachment_bytes`, with the uploads under way here),
/// then kept by adding each upload and subtracting what a conversation's
/// deletion frees — never a scan per upload. Nodes sharing a store sum it
/// again after each sweep (`cluster`), to count the others' files.
///
/// It also holds each conversation's uploads under way (files, bytes),
/// taken when an upload passes the conversation's caps and given back in
/// the same hold of the conversation's lock that appends its event, so a
/// racing upload sees it either reserved or in the log, never neither.
#[derive(Debug, Default)]
pub struct Usage {
    total: Mutex<Option<u64>>,
    pending: Mutex<HashMap<String, (u64, u64)>>,
}

/// What the log says of an attachment and its first part: what a
/// download starts with (the rest is read part by part,
/// `attachment_part`, so a download never holds the whole file).
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub kind: AttachmentKind,
    /// The sanitised name (`safe_name`).
    pub name: String,
    /// Bytes, as the log says.
    pub size: u64,
    /// Part 0 of the bytes (`Store::attachment_chunk`).
    pub first: Vec<u8>,
}

/// Characters of a file name kept (a longer one is cut).
const NAME_CHARS: usize = 100;

/// A file name safe to show and to put in a header: letters and digits
/// (any script), space, `.`, `-`, `_`, `(`, `)`; anything else becomes
/// `_`; no leading dot; at most `NAME_CHARS`. Its extension is the one of
/// the sniffed kind (a PNG sent as `x.html` is `x.png`), so a saved copy
/// opens as what it is.
pub fn safe_name(given: Option<&str>, kind: AttachmentKind) -> String {
    let given = given.unwrap_or("");
    // Only the last path segment (a browser may send `C:\fakepath\x.png`).
    let base = given.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem = match cleaned.rsplit_once('.') {
        Some((stem, _)) => stem.trim(),
        None => cleaned,
    };
    let stem: String = stem.chars().take(NAME_CHARS - 5).collect();
    let stem = if stem.trim().is_empty() {
        "attachment".to_string()
    } else {
        stem.trim().to_string()
    };
    let ext = match cleaned
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
    {
        Some(e) if e == "jpeg" && kind == AttachmentKind::Jpeg => "jpeg",
        _ => kind.extension(),
    };
    format!("{stem}.{ext}")
}

impl App {
    /// Stores a file sent into conversation `id` by its visitor (`agent:
    /// None`) or by `agent`, and appends its `attachment` event. A
    /// visitor's file counts against the conversation's messages per
    /// minute.
    pub fn attach(
        &self,
        id: &str,
        agent: Option<&Agent>,
        name: Option<&str>,
        bytes: &[u8],
    ) -> Result<Stored, ApiError> {
        let max = self.inner.config.attachments.max_bytes;
        if bytes.len() > max {
            return Err(too_large(max));
        }
        if bytes.is_empty() {
            return Err(ApiError::invalid("empty_attachment", "the file is empty"));
        }
        let Some(kind) = AttachmentKind::sniff(bytes) else {
            return Err(ApiError::new(
                ErrorKind::UnsupportedType,
                "unsupported_attachment_type",
                "only images (PNG, JPEG, GIF, WebP) and PDF files can be sent; \
                 the type is read from the file's content, not its name",
            ));
        };
        if name.is_some_and(|n| n.chars().count() > 1000) {
            return Err(ApiError::invalid(
                "field_too_long",
                "`name` is longer than 1000 characters",
            ));
        }
        if agent.is_none() {
            self.limit_messages(id, self.now_ms())?;
        }
        // The conversation must exist before anything is stored.
        crate::store::check_id(id).map_err(|_| ApiError::not_found("conversation"))?;
        let size = bytes.len() as u64;
        // The caps' check and the reservation are one step under the
        // conversation's lock (review A5: two uploads checked before
        // either was written both passed).
        {
            let _g = self.stripe(id);
            self.within_conversation_caps(id, size)?;
            self.pending_change(id, size, true);
        }
        if let Err(e) = self.reserve_storage(size) {
            self.pending_change(id, size, false);
            return Err(e);
        }
        let attachment = format!("a{}", auth::hex(&auth::random_bytes::<12>()));
        if let Err(e) = self.inner.store.put_attachment(id, &attachment, bytes) {
            self.pending_change(id, size, false);
            self.storage_freed(size);
            return Err(e.into());
        }
        let input = Input::Attachment {
            id: attachment.clone(),
            kind,
            size: bytes.len() as u64,
            name: safe_name(name, kind),
            agent: agent.map(|a| a.name.clone()),
        };
        // `apply`, with the reservation given back inside its lock.
        let g = self.stripe(id);
        let applied = self.apply_locked(id, input, self.now_ms());
        self.pending_change(id, size, false);
        drop(g);
        let applied = applied.map(|(appended, before)| {
            self.after_queue_change(id, before);
            Stored {
                records: appended.records,
                duplicate: appended.duplicate,
            }
        });
        match applied {
            Ok(stored) => {
                self.inner.metrics.inc(Count::Message(if agent.is_some() {
                    "agent"
                } else {
                    "visitor"
                }));
                Ok(stored)
            }
            Err(e) => {
                match self.inner.store.delete_attachment(id, &attachment) {
                    Ok(()) => self.storage_freed(size),
                    Err(undo) => {
                        tracing::warn!(error = %undo, conversation = id, "an unused attachment stays stored")
                    }
                }
                Err(e)
            }
        }
    }

    /// Adds (`take`) or gives back one upload of `size` bytes under way
    /// in conversation `id`.
    fn pending_change(&self, id: &str, size: u64, take: bool) {
        let mut p = self
            .inner
            .attachment_usage
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if take {
            let e = p.entry(id.to_string()).or_default();
            e.0 += 1;
            e.1 += size;
        } else if let Some(e) = p.get_mut(id) {
            e.0 = e.0.saturating_sub(1);
            e.1 = e.1.saturating_sub(size);
            if e.0 == 0 {
                p.remove(id);
            }
        }
    }

    /// `[attachments] max_files_per_conversation` and
    /// `max_bytes_per_conversation`, from the conversation's log and its
    /// uploads under way (413 `attachment_quota_exceeded`). The caller
    /// holds the conversation's lock and reserves the upload before it
    /// lets go.
    fn within_conversation_caps(&self, id: &str, size: u64) -> Result<(), ApiError> {
        let caps = &self.inner.config.attachments;
        let (files, bytes) = self.attachments_of(id)?;
        let (more_files, more_bytes) = self
            .inner
            .attachment_usage
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or_default();
        let (files, bytes) = (files + more_files, bytes + more_bytes);
        if files >= caps.max_files_per_conversation as u64 {
            return Err(ApiError::new(
                ErrorKind::TooLarge,
                "attachment_quota_exceeded",
                format!(
                    "this conversation holds {files} files, its most \
                     ([attachments] max_files_per_conversation)"
                ),
            ));
        }
        if bytes + size > caps.max_bytes_per_conversation {
            return Err(ApiError::new(
                ErrorKind::TooLarge,
                "attachment_quota_exceeded",
                format!(
                    "this conversation's files would pass {} bytes \
                     ([attachments] max_bytes_per_conversation)",
                    caps.max_bytes_per_conversation
                ),
            ));
        }
        Ok(())
    }

    /// How many files conversation `id`'s log names, and their bytes.
    pub(super) fn attachments_of(&self, id: &str) -> Result<(u64, u64), ApiError> {
        let log = self.inner.store.read(id, 0)?;
        Ok(log.iter().fold((0, 0), |(n, b), r| match &r.event {
            Event::Attachment { size, .. } => (n + 1, b + size),
            _ => (n, b),
        }))
    }

    /// Counts `size` more bytes against `[attachments] max_total_bytes`
    /// (507 `attachment_storage_full` when they do not fit).
    fn reserve_storage(&self, size: u64) -> Result<(), ApiError> {
        let cap = self.inner.config.attachments.max_total_bytes;
        let mut total = self
            .inner
            .attachment_usage
            .total
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = match *total {
            Some(t) => t,
            None => {
                // This node's uploads under way are not stored yet (this
                // one's own aside); one stored and not yet given back
                // counts twice for that moment, on the safe side.
                let under_way: u64 = self
                    .inner
                    .attachment_usage
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .map(|(_, bytes)| bytes)
                    .sum();
                self.inner.store.attachment_bytes()? + under_way.saturating_sub(size)
            }
        };
        if cap > 0 && now + size > cap {
            *total = Some(now);
            return Err(ApiError::new(
                ErrorKind::StorageFull,
                "attachment_storage_full",
                "the server's storage for files is full ([attachments] max_total_bytes); \
                 try again later or send a smaller file",
            ));
        }
        *total = Some(now + size);
        Ok(())
    }

    /// Other nodes may have stored or freed attachments (`cluster`'s
    /// sweep): the next upload sums the store again.
    pub(super) fn recount_storage(&self) {
        *self
            .inner
            .attachment_usage
            .total
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// `size` bytes of attachments are no longer stored.
    pub(super) fn storage_freed(&self, size: u64) {
        let mut total = self
            .inner
            .attachment_usage
            .total
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(t) = total.as_mut() {
            *t = t.saturating_sub(size);
        }
    }

    /// The file `attachment` of conversation `id`, if its log names it
    /// and its bytes are stored. The caller has checked who asks.
    pub fn attachment_file(&self, id: &str, attachment: &str) -> Result<AttachmentFile, ApiError> {
        let gone = || ApiError::not_found("attachment");
        if crate::store::check_attachment_id(attachment).is_err() {
            return Err(gone());
        }
        let log = self.inner.store.read(id, 0)?;
        let (kind, name, size) = log
            .iter()
            .find_map(|r| match &r.event {
                Event::Attachment {
                    id,
                    kind,
                    name,
                    size,
                    ..
                } if id == attachment => Some((*kind, name.clone(), *size)),
                _ => None,
            })
            .ok_or_else(gone)?;
        let first = self
            .inner
            .store
            .attachment_chunk(id, attachment, 0)?
            .ok_or_else(gone)?;
        Ok(AttachmentFile {
            kind,
            name,
            size,
            first,
        })
    }

    /// Part `index` of a file `attachment_file` found (`None` past its
    /// end).
    pub fn attachment_part(
        &self,
        id: &str,
        attachment: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(self.inner.store.attachment_chunk(id, attachment, index)?)
    }
}

/// How long a file link (`App::file_link`) opens its file.
pub const LINK_SECS: i64 = 24 * 3600;

impl App {
    /// A link to one file for a visitor's `<img src>` (which cannot send
    /// the token in a header): its expiry (Unix seconds, `LINK_SECS` from
    /// now) and an HMAC under the server's secret of `file:` conversation,
    /// attachment and expiry. It opens that one file until then, nothing
    /// else, and says nothing of the visitor's token.
    pub fn file_link(&self, id: &str, attachment: &str) -> (i64, String) {
        let exp = self.now_ms() / 1000 + LINK_SECS;
        (exp, self.file_sig(id, attachment, exp))
    }

    /// Whether `sig` is `file_link`'s signature for this file and `exp`
    /// has not passed.
    pub fn file_link_valid(&self, id: &str, attachment: &str, exp: i64, sig: &str) -> bool {
        exp >= self.now_ms() / 1000 && auth::same(&self.file_sig(id, attachment, exp), sig)
    }

    fn file_sig(&self, id: &str, attachment: &str, exp: i64) -> String {
        auth::sign(
            &self.inner.secret,
            format!("file:{id}:{attachment}:{exp}").as_bytes(),
        )
    }
}

/// The answer to a file over `[attachments] max_bytes`.
pub fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorKind::TooLarge,
        "attachment_too_large",
        format!("a file is at most {max} bytes ([attachments] max_bytes)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_and_take_the_kind_s_extension() {
        use AttachmentKind::*;
        for (given, kind, expected) in [
            (Some("broken vase.jpg"), Jpeg, "broken vase.jpg"),
            (Some("broken.JPEG"), Jpeg, "broken.jpeg"),
            (Some("photo.html"), Png, "photo.png"),
            (Some("C:\\fakepath\\scan.pdf"), Pdf, "scan.pdf"),
            (Some("../../etc/passwd"), Gif, "passwd.gif"),
            (Some("\"a\";b\r\n.png"), Png, "_a__b__.png"),
            (Some(".hidden"), Webp, "hidden.webp"),
            (Some("..."), Webp, "attachment.webp"),
            (Some("Größe_kaputt.png"), Png, "Größe_kaputt.png"),
            (Some(""), Png, "attachment.png"),
            (None, Pdf, "attachment.pdf"),
        ] {
            assert_eq!(safe_name(given, kind), expected, "{given:?}");
        }
        let long = "x".repeat(500) + ".png";
        assert!(safe_name(Some(&long), Png).chars().count() <= NAME_CHARS);
    }

    #[test]
    fn kinds_are_read_from_the_content() {
        use AttachmentKind::*;
        for (bytes, kind) in [
            (&b"\x89PNG\r\n\x1a\n...."[..], Some(Png)),
            (b"\xFF\xD8\xFF\xE0..", Some(Jpeg)),
            (b"GIF89a..", Some(Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Webp)),
            (b"%PDF-1.7\n", Some(Pdf)),
            (b"<html><script>alert(1)</script>", None),
            (b"<?xml version=\"1.0\"?><svg xmlns=", None),
            (b"<svg onload=alert(1)>", None),
            (b"#!/bin/sh\n", None),
            (b"RIFF\0\0\0\0WAVE", None),
            (b"", None),
        ] {
            assert_eq!(AttachmentKind::sniff(bytes), kind, "{bytes:?}");
        }
    }
}
