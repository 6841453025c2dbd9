//! Every sentence the server or the widget shows a visitor, in one table:
//! built-in English and German sets, chosen by `[texts] language` in
//! `frontdesk.toml`, with any key overridable there. The intents' own
//! answers are the shop's content and are not here.
//!
//! A text may hold `{placeholders}`; each key supports a fixed set (listed
//! in `KEYS`), and an override using any other is refused when the config
//! is loaded, so a typo cannot reach a visitor as `{opnes}`. Filling never
//! panics: a brace without a partner, or a value holding braces, is kept as
//! it is.
//!
//! This module must not import `store`, `app` or `http`.

use crate::intents::render;
use crate::util::normalize::normalize;

/// A built-in set of texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    De,
}

impl Language {
    /// Every built-in language, for tests and error messages.
    pub const ALL: [Language; 2] = [Language::En, Language::De];

    /// The code written in `frontdesk.toml` and given to the widget as its
    /// `lang` (so screen readers pronounce the texts right).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// One key of the table: its name in `[texts]` and the placeholders its
/// text may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub placeholders: &'static [&'static str],
}

/// A `[texts]` override that cannot be used, naming the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("unknown language {0:?} (known: \"en\", \"de\")")]
    Language(String),
    #[error("unknown text `{0}`; `frontdesk default-config` lists the keys")]
    UnknownKey(String),
    #[error("text `{key}` does not support the placeholder `{{{placeholder}}}` (it supports: {supported})")]
    Placeholder {
        key: String,
        placeholder: String,
        supported: String,
    },
    #[error("text `{0}` is empty")]
    Empty(String),
}

impl TextError {
    /// The `[texts]` key to fix (`language` for an unknown language).
    pub fn key(&self) -> &str {
        match self {
            TextError::Language(_) => "language",
            TextError::UnknownKey(key) | TextError::Empty(key) => key,
            TextError::Placeholder { key, .. } => key,
        }
    }
}

/// Declares the table once: the struct, the key list, and the two
/// built-in sets, so a key cannot be added to one and forgotten in another.
macro_rules! texts {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident [$($ph:ident),*] { en: $en:expr, de: $de:expr $(,)? }
    )*) => {
        /// The texts in use. Placeholders are listed per field as `{name}`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Texts {
            /// Which built-in set the texts started from; the widget is
            /// told it as its `lang`.
            pub language: Language,
            $( $(#[doc = $doc])* pub $key: String, )*
        }

        /// Every key, in the table's order, with its placeholders.
        pub const KEYS: &[Key] = &[
            $( Key { name: stringify!($key), placeholders: &[$(stringify!($ph)),*] }, )*
        ];

        impl Texts {
            /// The built-in set of `language`, without overrides.
            pub fn builtin(language: Language) -> Texts {
                match language {
                    Language::En => Texts { language, $( $key: String::from($en), )* },
                    Language::De => Texts { language, $( $key: String::from($de), )* },
                }
            }

            /// The text of `key`, by its name in `[texts]`.
            pub fn get(&self, key: &str) -> Option<&str> {
                match key {
                    $( stringify!($key) => Some(&self.$key), )*
                    _ => None,
                }
            }

            fn slot(&mut self, key: &str) -> Option<&mut String> {
                match key {
                    $( stringify!($key) => Some(&mut self.$key), )*
                    _ => None,
                }
            }
        }
    };
}

texts! {
    // ---- the bot, in the conversation (server) ----------------------------
    /// The bot did not understand the message.
    fallback [] {
        en: "Sorry, I didn't get that. Could you put it another way, or shall I get a person?",
        de: "Entschuldigung, das habe ich nicht verstanden. Können Sie es anders formulieren, oder soll ich Sie mit einer Person aus unserem Team verbinden?",
    }
    /// The bot offers a person instead of handing off at once.
    offer [] {
        en: "I'm not sure I can help with that. Shall I get a person?",
        de: "Ich bin nicht sicher, ob ich dabei helfen kann. Soll ich Sie mit einer Person aus unserem Team verbinden?",
    }
    /// The visitor declined the offer. `{person}`: the `talk_to_person` label.
    declined [person] {
        en: "All right. Ask me anything else, or tap \"{person}\" at any time.",
        de: "Alles klar. Fragen Sie mich gern etwas anderes, oder tippen Sie jederzeit auf „{person}“.",
    }
    /// The visitor said an answer did not help: the bot offers a person
    /// (with the `offer_yes` / `offer_no` quick replies).
    not_helpful [] {
        en: "Sorry that didn't help. Shall I get a person?",
        de: "Schade, dass das nicht geholfen hat. Soll ich Sie mit einer Person aus unserem Team verbinden?",
    }
    /// After three lookups of a private answer (an order) that showed
    /// nothing, the bot looks up no more in this conversation and offers a
    /// person (with the `offer_yes` / `offer_no` quick replies).
    lookup_locked [] {
        en: "I can't look up more orders in this chat. Shall I get a person to help you?",
        de: "In diesem Chat kann ich keine weiteren Bestellungen nachsehen. Soll ich Sie mit einer Person aus unserem Team verbinden?",
    }
    /// The quick reply and widget button that asks for a person.
    talk_to_person [] {
        en: "Talk to a person",
        de: "Mit einem Menschen sprechen",
    }
    /// The quick reply that accepts the offer (the bot understands it).
    offer_yes [] { en: "Yes please", de: "Ja, bitte" }
    /// The quick reply that declines the offer (the bot understands it).
    offer_no [] { en: "No thanks", de: "Nein, danke" }
    /// "Did you mean …?" `{options}`: the choices, each `clarify_option`,
    /// joined by `clarify_or`.
    clarify [options] { en: "Did you mean: {options}?", de: "Meinten Sie: {options}?" }
    /// One choice of `clarify`. `{label}`: the intent's label.
    clarify_option [label] { en: "\"{label}\"", de: "„{label}“" }
    /// Between two choices of `clarify`.
    clarify_or [] { en: ", or ", de: " oder " }
    /// Fills an answer's `{name}` when the visitor gave no name
    /// ("Hi {name}!" → "Hi there!").
    no_name [] { en: "there", de: "zusammen" }

    // ---- queue notices (server) -------------------------------------------
    /// Queued outside business hours, with a known opening. `{opens}`: the
    /// opening, as `opens_at`.
    queue_closed_until [opens] {
        en: "We're closed right now. A person will reply when we open, {opens}. Your message is saved.",
        de: "Wir haben gerade geschlossen. Eine Person aus unserem Team antwortet, sobald wir öffnen: {opens}. Ihre Nachricht ist gespeichert.",
    }
    /// Queued outside business hours, no opening known.
    queue_closed [] {
        en: "We're closed right now. Your message is saved and a person will reply as soon as we can.",
        de: "Wir haben gerade geschlossen. Ihre Nachricht ist gespeichert, und eine Person aus unserem Team antwortet so bald wie möglich.",
    }
    /// Queued with no agent online.
    queue_nobody [] {
        en: "Nobody from the team is available at this moment. Your message is saved and a person will reply as soon as someone is back.",
        de: "Gerade ist niemand aus unserem Team erreichbar. Ihre Nachricht ist gespeichert, und eine Person antwortet, sobald jemand zurück ist.",
    }
    /// Added to a queue notice, with the `leave_email` quick reply, only
    /// when an SMTP server is configured (`[email]`): otherwise no email
    /// is promised.
    queue_email_offer [] {
        en: "Leave your email if you'd like the answer there too.",
        de: "Hinterlassen Sie Ihre E-Mail-Adresse, wenn Sie die Antwort auch dorthin bekommen möchten.",
    }
    /// The quick reply that opens the email form (the widget knows it).
    leave_email [] { en: "Leave my email", de: "E-Mail-Adresse hinterlassen" }
    /// When the shop opens. `{weekday}`: one of `monday` … `sunday`;
    /// `{time}`: 24-hour `HH:MM`; `{timezone}`: the IANA zone.
    opens_at [weekday, time, timezone] {
        en: "{weekday} {time} ({timezone})",
        de: "{weekday} um {time} Uhr ({timezone})",
    }
    monday [] { en: "Monday", de: "Montag" }
    tuesday [] { en: "Tuesday", de: "Dienstag" }
    wednesday [] { en: "Wednesday", de: "Mittwoch" }
    thursday [] { en: "Thursday", de: "Donnerstag" }
    friday [] { en: "Friday", de: "Freitag" }
    saturday [] { en: "Saturday", de: "Samstag" }
    sunday [] { en: "Sunday", de: "Sonntag" }

    // ---- the widget's own lines (served inside /widget.js) ----------------
    /// The panel's heading (a page's `data-title` wins).
    widget_title [] { en: "Chat with us", de: "Chatten Sie mit uns" }
    /// Label of the launcher when the panel is closed.
    widget_open [] { en: "Open chat", de: "Chat öffnen" }
    /// Label of the launcher and the × when the panel is open.
    widget_close [] { en: "Close chat", de: "Chat schließen" }
    /// The first line in the panel.
    widget_welcome [] {
        en: "Hi! Ask me about orders, shipping, returns and more.",
        de: "Hallo! Fragen Sie mich zu Bestellungen, Versand, Rücksendungen und mehr.",
    }
    widget_placeholder [] { en: "Type your message…", de: "Ihre Nachricht…" }
    widget_send [] { en: "Send", de: "Senden" }
    /// Someone is typing.
    widget_typing [] { en: "Typing…", de: "Schreibt…" }
    /// Who wrote: the visitor.
    widget_you [] { en: "You", de: "Sie" }
    /// Who wrote: the bot.
    widget_bot [] { en: "Assistant", de: "Assistent" }
    /// `{agent}`: the agent's name.
    widget_joined [agent] {
        en: "{agent} joined the conversation",
        de: "{agent} ist dem Gespräch beigetreten",
    }
    /// `{position}`: 1 is next.
    widget_queued [position] {
        en: "You are number {position} in the queue.",
        de: "Sie sind Nummer {position} in der Warteschlange.",
    }
    /// `{minutes}`: the estimate, at least 1.
    widget_wait [minutes] {
        en: "Estimated wait: about {minutes} min.",
        de: "Geschätzte Wartezeit: etwa {minutes} Min.",
    }
    /// The conversation goes to a person.
    widget_handoff [] {
        en: "Getting a person for you…",
        de: "Ich verbinde Sie mit einer Person aus unserem Team…",
    }
    /// `{agent}`: the agent now in charge.
    widget_transfer [agent] {
        en: "You are now talking with {agent}.",
        de: "Sie sprechen jetzt mit {agent}.",
    }
    widget_back [] {
        en: "You are back with the assistant.",
        de: "Sie sind wieder beim Assistenten.",
    }
    widget_closed [] {
        en: "The conversation was closed.",
        de: "Das Gespräch wurde beendet.",
    }
    /// Above the rating stars.
    widget_rate [] { en: "How did we do?", de: "Wie zufrieden waren Sie?" }
    /// A star button's label. `{n}`: 1 to 5.
    widget_star [n] { en: "{n} of 5", de: "{n} von 5" }
    widget_thanks [] {
        en: "Thank you for your rating!",
        de: "Danke für Ihre Bewertung!",
    }
    /// Under each answer of the bot, before its two buttons.
    widget_helpful [] { en: "Was this helpful?", de: "War das hilfreich?" }
    /// The button that says an answer helped.
    widget_helpful_yes [] { en: "Yes", de: "Ja" }
    /// The button that says an answer did not help.
    widget_helpful_no [] { en: "No", de: "Nein" }
    /// Shown once the visitor chose (either way).
    widget_helpful_thanks [] {
        en: "Thanks for telling us.",
        de: "Danke für Ihre Rückmeldung.",
    }
    /// The email field.
    widget_email [] { en: "Your email", de: "Ihre E-Mail-Adresse" }
    widget_email_send [] { en: "Send", de: "Senden" }
    /// `{email}`: the address left.
    widget_email_left [email] {
        en: "We will also reply to {email}.",
        de: "Wir antworten auch an {email}.",
    }
    /// Rate-limited. `{seconds}`: how long to wait.
    widget_limited [seconds] {
        en: "You are sending messages too fast. Please wait {seconds} s.",
        de: "Sie senden Nachrichten zu schnell. Bitte warten Sie {seconds} s.",
    }
    widget_down [] {
        en: "We cannot reach the chat right now. Reconnecting…",
        de: "Der Chat ist gerade nicht erreichbar. Neue Verbindung wird aufgebaut…",
    }
    widget_failed [] {
        en: "Something went wrong. Please try again.",
        de: "Etwas ist schiefgelaufen. Bitte versuchen Sie es noch einmal.",
    }
    /// The optional comment field beside the rating stars.
    widget_comment [] {
        en: "Anything to add? (optional)",
        de: "Möchten Sie etwas ergänzen? (optional)",
    }
    /// The launcher's label while replies are unread. `{n}`: how many.
    widget_unread [n] {
        en: "Open chat, {n} new",
        de: "Chat öffnen, {n} neu",
    }
    /// The label of the widget's attach button.
    widget_attach [] {
        en: "Attach a photo or PDF",
        de: "Foto oder PDF anhängen",
    }
    widget_attaching [] {
        en: "Sending the file…",
        de: "Die Datei wird gesendet…",
    }
    widget_attach_too_large [] {
        en: "That file is too large.",
        de: "Diese Datei ist zu groß.",
    }
    widget_attach_type [] {
        en: "Only photos (PNG, JPEG, GIF, WebP) and PDF files can be sent.",
        de: "Nur Fotos (PNG, JPEG, GIF, WebP) und PDF-Dateien können gesendet werden.",
    }
    widget_attach_closed [] {
        en: "This conversation was closed: send a message first, then the file.",
        de: "Dieses Gespräch wurde beendet: Schreiben Sie zuerst eine Nachricht, dann senden Sie die Datei.",
    }
    // ---- email (`[email]`) and the pre-chat form (`[widget] prechat`) --------
    /// The button under the closing line that emails the transcript.
    widget_transcript [] {
        en: "Email me this conversation",
        de: "Dieses Gespräch per E-Mail senden",
    }
    /// Shown once the transcript is on its way. `{email}`: where to.
    widget_transcript_sent [email] {
        en: "The conversation will be sent to {email}.",
        de: "Das Gespräch wird an {email} gesendet.",
    }
    /// Above the pre-chat form.
    widget_prechat [] {
        en: "Before we start, tell us who you are.",
        de: "Bevor es losgeht: Wer sind Sie?",
    }
    /// The pre-chat form's name field (optional).
    widget_prechat_name [] { en: "Your name (optional)", de: "Ihr Name (optional)" }
    /// The pre-chat form's button.
    widget_prechat_start [] { en: "Start chat", de: "Chat beginnen" }
    /// The pre-chat form's email is not an address.
    widget_prechat_bad_email [] {
        en: "Please enter an email address like name@example.com.",
        de: "Bitte geben Sie eine E-Mail-Adresse wie name@example.com ein.",
    }
    /// An email's link that was used already or has expired (each works
    /// once, for `[email] link_hours`).
    widget_link_spent [] {
        en: "This link from our email has been used or has expired. The newest email from us has a fresh one; or start a new chat here.",
        de: "Dieser Link aus unserer E-Mail wurde schon benutzt oder ist abgelaufen. Die neueste E-Mail von uns enthält einen neuen; oder beginnen Sie hier einen neuen Chat.",
    }
    /// Subject of the email with an agent's replies. `{agent}`: who wrote.
    email_reply_subject [agent] {
        en: "{agent} replied to your question",
        de: "{agent} hat auf Ihre Frage geantwortet",
    }
    /// Before the replies in that email. `{name}`: the visitor's name or
    /// `no_name`.
    email_reply_intro [name] {
        en: "Hello {name}, you have a reply in your chat with us:",
        de: "Hallo {name}, Sie haben eine Antwort in Ihrem Chat mit uns:",
    }
    /// The link back into the conversation. `{link}`: the address.
    email_link [link] {
        en: "Continue the conversation: {link}",
        de: "Gespräch fortsetzen: {link}",
    }
    /// Subject of the transcript email.
    email_transcript_subject [] {
        en: "Your conversation with us",
        de: "Ihr Gespräch mit uns",
    }
    /// Before the transcript.
    email_transcript_intro [] {
        en: "Here is your conversation with us, as you saw it:",
        de: "Hier ist Ihr Gespräch mit uns, wie Sie es gesehen haben:",
    }
    /// A file in an email (a reply's or the transcript's): only its name
    /// and size, never its bytes or a link to it. `{name}`: the file's
    /// name; `{size}`: like `70 bytes`, `2.4 KB`, `3.1 MB`.
    email_file [name, size] {
        en: "Sent a file: {name} ({size})",
        de: "Hat eine Datei gesendet: {name} ({size})",
    }
    /// The page passed a visitor identity that the server could not
    /// verify with `[identity] enforce` on (README, "Identity
    /// verification"): the chat goes on without it.
    widget_identity_refused [] {
        en: "We could not confirm your account, so this chat is not linked to it.",
        de: "Wir konnten Ihr Konto nicht bestätigen, daher ist dieser Chat nicht damit verknüpft.",
    }
    /// A short, vague message ("help", a product name): the bot shows its
    /// main topics as quick replies instead of guessing.
    menu [] {
        en: "I can help with these. Pick one, or tell me a little more:",
        de: "Dabei kann ich helfen. Wählen Sie ein Thema, oder schreiben Sie etwas mehr dazu:",
    }
}

/// The widget's string names (`S.name` in `widget.js`, and the names
/// `data-strings` overrides) and the keys they come from. The quick-reply
/// labels are the server's own keys, so a tap sends exactly what the bot
/// understands.
pub const WIDGET: &[(&str, &str)] = &[
    ("title", "widget_title"),
    ("open", "widget_open"),
    ("close", "widget_close"),
    ("welcome", "widget_welcome"),
    ("placeholder", "widget_placeholder"),
    ("send", "widget_send"),
    ("person", "talk_to_person"),
    ("typing", "widget_typing"),
    ("you", "widget_you"),
    ("bot", "widget_bot"),
    ("joined", "widget_joined"),
    ("queued", "widget_queued"),
    ("wait", "widget_wait"),
    ("handoff", "widget_handoff"),
    ("transfer", "widget_transfer"),
    ("back", "widget_back"),
    ("closed", "widget_closed"),
    ("rate", "widget_rate"),
    ("star", "widget_star"),
    ("thanks", "widget_thanks"),
    ("helpful", "widget_helpful"),
    ("helpfulYes", "widget_helpful_yes"),
    ("helpfulNo", "widget_helpful_no"),
    ("helpfulThanks", "widget_helpful_thanks"),
    ("email", "widget_email"),
    ("emailSend", "widget_email_send"),
    ("emailLeft", "widget_email_left"),
    ("limited", "widget_limited"),
    ("down", "widget_down"),
    ("failed", "widget_failed"),
    ("comment", "widget_comment"),
    ("unread", "widget_unread"),
    ("yes", "offer_yes"),
    ("no", "offer_no"),
    ("leaveEmail", "leave_email"),
    ("attach", "widget_attach"),
    ("attaching", "widget_attaching"),
    ("attachTooLarge", "widget_attach_too_large"),
    ("attachType", "widget_attach_type"),
    ("attachClosed", "widget_attach_closed"),
    ("transcript", "widget_transcript"),
    ("transcriptSent", "widget_transcript_sent"),
    ("prechat", "widget_prechat"),
    ("prechatName", "widget_prechat_name"),
    ("prechatStart", "widget_prechat_start"),
    ("prechatBadEmail", "widget_prechat_bad_email"),
    ("linkSpent", "widget_link_spent"),
    ("identityRefused", "widget_identity_refused"),
];

/// Words (normalized) that accept or decline the offer in each language,
/// besides the `offer_yes` / `offer_no` labels. English ones are in
/// `machine.rs` and always understood.
const YES_DE: &[&str] = &[
    "ja", "ja bitte", "ja gerne", "gerne", "gern", "bitte", "klar", "okay", "ok",
];
const NO_DE: &[&str] = &[
    "nein",
    "nein danke",
    "nee",
    "ne",
    "lieber nicht",
    "nicht jetzt",
    "keine davon",
    "keins davon",
];

impl Default for Texts {
    fn default() -> Texts {
        Texts::builtin(Language::En)
    }
}

impl Texts {
    /// `language`'s set with `overrides` (key, text) applied in order.
    pub fn try_new<'a>(
        language: Language,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Texts, TextError> {
        let mut texts = Texts::builtin(language);
        for (key, text) in overrides {
            check(key, text)?;
            if let Some(slot) = texts.slot(key) {
                *slot = text.to_string();
            }
        }
        Ok(texts)
    }

    /// The widget's strings, by the names `widget.js` uses.
    pub fn widget(&self) -> Vec<(&'static str, &str)> {
        WIDGET
            .iter()
            .filter_map(|(name, key)| Some((*name, self.get(key)?)))
            .collect()
    }

    /// Whether a (normalized) message accepts the offer of a person.
    pub fn is_yes(&self, norm: &str) -> bool {
        norm == normalize(&self.offer_yes)
            || (self.language == Language::De && YES_DE.contains(&norm))
    }

    /// Whether a (normalized) message declines the offer, or every option.
    pub fn is_no(&self, norm: &str) -> bool {
        norm == normalize(&self.offer_no)
            || (self.language == Language::De && NO_DE.contains(&norm))
    }

    /// `declined` with its placeholder filled.
    pub fn declined(&self) -> String {
        fill(&self.declined, &[("person", &self.talk_to_person)])
    }

    /// `clarify` for these intent labels.
    pub fn clarify(&self, labels: &[String]) -> String {
        let options: Vec<String> = labels
            .iter()
            .map(|l| fill(&self.clarify_option, &[("label", l)]))
            .collect();
        fill(
            &self.clarify,
            &[("options", &options.join(&self.clarify_or))],
        )
    }

    /// `opens_at` for a weekday (0 = Monday), a time and a zone.
    pub fn opens_at(&self, weekday: usize, time: &str, timezone: &str) -> String {
        let days = [
            &self.monday,
            &self.tuesday,
            &self.wednesday,
            &self.thursday,
            &self.friday,
            &self.saturday,
            &self.sunday,
        ];
        let day = days.get(weekday).map_or("", |d| d.as_str());
        fill(
            &self.opens_at,
            &[("weekday", day), ("time", time), ("timezone", timezone)],
        )
    }
}

/// Fills `{name}` placeholders from `values`; anything else stays as
/// written. Never panics, whatever the text or the values hold.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    render(text, |k| {
        values.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    })
}

/// The `{…}` names in `text`, read the way `fill` reads them (a `{` with
/// no `}` after it is plain text).
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// Checks one override: a known key, not empty, only its placeholders.
pub fn check(key: &str, text: &str) -> Result<(), TextError> {
    let Some(k) = KEYS.iter().find(|k| k.name == key) else {
        return Err(TextError::UnknownKey(key.to_string()));
    };
    if text.trim().is_empty() {
        return Err(TextError::Empty(key.to_string()));
    }
    if let Some(bad) = placeholders(text)
        .into_iter()
        .find(|p| !k.placeholders.contains(p))
    {
        let supported = if k.placeholders.is_empty() {
            "none".to_string()
        } else {
            k.placeholders
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(TextError::Placeholder {
            key: key.to_string(),
            placeholder: bad.to_string(),
            supported,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_text_with_its_documented_placeholders_in_each_language() {
        for language in Language::ALL {
            let texts = Texts::builtin(language);
            for key in KEYS {
                let text = texts.get(key.name).unwrap();
                assert!(!text.trim().is_empty(), "{language:?} {}", key.name);
                let mut used = placeholders(text);
                used.sort_unstable();
                let mut documented = key.placeholders.to_vec();
                documented.sort_unstable();
                assert_eq!(used, documented, "{language:?} `{}`: {text:?}", key.name);
                // The built-ins pass the check an override must pass.
                check(key.name, text).unwrap();
            }
        }
    }

    #[test]
    fn german_is_complete_not_english() {
        let (en, de) = (Texts::builtin(Language::En), Texts::builtin(Language::De));
        for key in KEYS {
            assert_ne!(en.get(key.name), de.get(key.name), "`{}`", key.name);
        }
    }

    #[test]
    fn the_widget_gets_every_widget_key() {
        let en = Texts::default();
        let served: Vec<&str> = en.widget().iter().map(|(n, _)| *n).collect();
        assert_eq!(served.len(), WIDGET.len(), "every widget key exists");
        for key in KEYS.iter().filter(|k| k.name.starts_with("widget_")) {
            assert!(
                WIDGET.iter().any(|(_, k)| *k == key.name),
                "`{}` reaches the widget",
                key.name
            );
        }
    }

    #[test]
    fn overrides_are_checked() {
        let t = Texts::try_new(Language::De, [("fallback", "Wie bitte?")]).unwrap();
        assert_eq!(t.fallback, "Wie bitte?");
        assert_eq!(t.offer, Texts::builtin(Language::De).offer);
        assert_eq!(
            Texts::try_new(Language::En, [("fallbak", "x")]),
            Err(TextError::UnknownKey("fallbak".into()))
        );
        assert_eq!(
            Texts::try_new(Language::En, [("fallback", "Sorry {name}")])
                .unwrap_err()
                .to_string(),
            "text `fallback` does not support the placeholder `{name}` (it supports: none)"
        );
        assert_eq!(
            check("queue_closed_until", "Back {open}").unwrap_err().to_string(),
            "text `queue_closed_until` does not support the placeholder `{open}` (it supports: {opens})"
        );
        assert_eq!(check("offer", "  "), Err(TextError::Empty("offer".into())));
        // A lone brace is text, not a placeholder.
        check("fallback", "Sorry :-{ try again").unwrap();
    }

    proptest::proptest! {
        /// Whatever a shop writes and whatever a value holds (a visitor's
        /// name, an intent label), checking and filling never panic.
        #[test]
        fn check_and_fill_never_panic(text in "\\PC{0,40}", value in "\\PC{0,10}") {
            let _ = check("declined", &text);
            let filled = fill(&text, &[("person", &value)]);
            if !text.contains('{') {
                proptest::prop_assert_eq!(filled, text);
            }
        }
    }

    #[test]
    fn filling_keeps_what_it_does_not_know_and_never_panics() {
        assert_eq!(fill("Hi {a}!", &[("a", "{b}")]), "Hi {b}!");
        assert_eq!(fill("{x} {a", &[("a", "1")]), "{x} {a");
        for text in ["{", "}", "{}", "}{", "{{a}}", "é{ä}ö", "{\u{0}}", ""] {
            let _ = fill(text, &[("a", "ü"), ("", "")]);
            let _ = placeholders(text);
        }
        let de = Texts::builtin(Language::De);
        assert_eq!(
            de.clarify(&["Versand".into(), "Rückgabe".into()]),
            "Meinten Sie: „Versand“ oder „Rückgabe“?"
        );
        assert_eq!(
            Texts::default().clarify(&["A".into(), "B".into()]),
            "Did you mean: \"A\", or \"B\"?"
        );
        assert_eq!(
            de.opens_at(1, "09:00", "Europe/Berlin"),
            "Dienstag um 09:00 Uhr (Europe/Berlin)"
        );
        assert_eq!(de.opens_at(99, "09:00", "UTC"), " um 09:00 Uhr (UTC)");
        assert!(de.is_yes("ja bitte") && de.is_yes(&normalize(&de.offer_yes)));
        assert!(de.is_no("nein danke") && !de.is_no("ja"));
        assert!(
            !Texts::default().is_yes("ja"),
            "German words in German only"
        );
    }
}
