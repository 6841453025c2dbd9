//! `frontdesk.toml`: the settings of a deployment, as layers: defaults, then
//! the file, then `FRONTDESK_SECTION__KEY` environment variables (e.g.
//! `FRONTDESK_ESCALATION__MAX_FALLBACKS=3`). The raw form (what was written)
//! is kept apart from the compiled `Config` (what runs). This issue's
//! sections: `[escalation]`, `[queue]`, `[business_hours]`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::conversation::EscalationPolicy;
use crate::handoff::{BusinessHours, HoursError, RawHours};

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub escalation: RawEscalation,
    #[serde(default)]
    pub queue: RawQueue,
    pub business_hours: Option<RawHours>,
}

/// `[escalation]`: when the bot gets a person.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// Fallbacks in a row before a handoff (0: never). Default 2.
    pub max_fallbacks: Option<u32>,
    /// Hand off when a message reads as upset. Default true.
    pub on_negative_sentiment: Option<bool>,
    /// Ask "Shall I get a person?" first. Default true.
    pub offer_first: Option<bool>,
}

/// `[queue]`: how waiting visitors are ordered and told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Upset visitors go first. Default true.
    pub priority_for_upset: Option<bool>,
    /// Handle time assumed before any was measured, in seconds. Default 300.
    pub default_handle_secs: Option<u64>,
}

/// What runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub escalation: EscalationPolicy,
    pub priority_for_upset: bool,
    pub default_handle_secs: u64,
    /// `None`: always open (only agents' presence decides).
    pub business_hours: Option<BusinessHours>,
}

/// A configuration that cannot run, naming where to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{path}: [business_hours]: {0}", path = .1.display())]
    Hours(HoursError, PathBuf),
}

impl Config {
    /// Loads `path` (absent: defaults) with `env` overrides applied on top.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("frontdesk.toml"));
        let source = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError::Io {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?,
            None => String::new(),
        };
        // First as written, so that errors point at the file's lines.
        let parse_err = |e: toml::de::Error, source: &str| {
            let (line, col) =
                crate::intents::error::line_col(source, e.span().map_or(0, |s| s.start));
            ConfigError::Parse {
                path: shown.clone(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        };
        toml::from_str::<RawConfig>(&source).map_err(|e| parse_err(e, &source))?;
        let mut table: toml::Table = toml::from_str(&source).map_err(|e| parse_err(e, &source))?;
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("FRONTDESK_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_lowercase(), key.to_lowercase());
            let parsed = value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .or_else(|_| value.parse::<bool>().map(toml::Value::Boolean))
                .unwrap_or_else(|_| toml::Value::String(value.clone()));
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key, parsed);
                }
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("`{section}` is not a section"),
                    })
                }
            }
            // Check each override on its own, so the error names it.
            if let Err(e) = toml::Table::try_into::<RawConfig>(table.clone()) {
                return Err(ConfigError::Env {
                    var,
                    message: e.message().trim().to_string(),
                });
            }
        }
        let raw: RawConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env {
                var: "FRONTDESK_*".into(),
                message: e.message().to_string(),
            })?;
        let defaults = EscalationPolicy::default();
        Ok(Config {
            escalation: EscalationPolicy {
                max_fallbacks: raw
                    .escalation
                    .max_fallbacks
                    .unwrap_or(defaults.max_fallbacks),
                on_negative_sentiment: raw
                    .escalation
                    .on_negative_sentiment
                    .unwrap_or(defaults.on_negative_sentiment),
                offer_first: raw.escalation.offer_first.unwrap_or(defaults.offer_first),
            },
            priority_for_upset: raw.queue.priority_for_upset.unwrap_or(true),
            default_handle_secs: raw.queue.default_handle_secs.unwrap_or(300),
            business_hours: match &raw.business_hours {
                None => None,
                Some(h) => {
                    Some(BusinessHours::new(h).map_err(|e| ConfigError::Hours(e, shown.clone()))?)
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("frontdesk.toml");
        std::fs::write(&p, body).unwrap();
        (dir, p)
    }

    #[test]
    fn defaults_file_then_environment() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.escalation, EscalationPolicy::default());
        assert!(c.business_hours.is_none());
        let (_d, p) = write("[escalation]\nmax_fallbacks = 3\noffer_first = false\n[queue]\ndefault_handle_secs = 120\n[business_hours]\ntimezone = \"Europe/Berlin\"\nmonday = [\"09:00-17:00\"]\n");
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.escalation.max_fallbacks, 3);
        assert!(!c.escalation.offer_first);
        assert_eq!(c.default_handle_secs, 120);
        assert!(c.business_hours.is_some());
        let env = [
            (
                "FRONTDESK_ESCALATION__MAX_FALLBACKS".to_string(),
                "5".to_string(),
            ),
            (
                "FRONTDESK_ESCALATION__ON_NEGATIVE_SENTIMENT".to_string(),
                "false".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = Config::load(Some(&p), env).unwrap();
        assert_eq!(
            c.escalation.max_fallbacks, 5,
            "the environment wins over the file"
        );
        assert!(!c.escalation.on_negative_sentiment);
    }

    #[test]
    fn errors_point_at_the_line_or_the_variable() {
        let (_d, p) = write("[escalation]\nmax_fallbacks = 2\nmax_fallback = 3\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains("frontdesk.toml:3:1: unknown field `max_fallback`"),
            "{e}"
        );
        let (_d, p) = write("[escalation]\nmax_fallbacks = \"two\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(e.contains("frontdesk.toml:2:17: invalid type"), "{e}");
        let env = [(
            "FRONTDESK_ESCALATION__MAX_FALLBACKS".to_string(),
            "many".to_string(),
        )];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("environment variable FRONTDESK_ESCALATION__MAX_FALLBACKS: invalid type"),
            "{e}"
        );
        let (_d, p) = write("[business_hours]\ntimezone = \"Mars/Base\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(e.contains("unknown time zone `Mars/Base`"), "{e}");
        let e = Config::load(Some(Path::new("/nonexistent/frontdesk.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
