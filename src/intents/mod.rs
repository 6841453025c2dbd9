//! Intent files: the raw format admins edit (`file.rs`), validation into an
//! `IntentSet` (`compile.rs`), and located errors (`error.rs`).
//! This module owns the file format; it must not know how messages are
//! scored (that is `classify`).

pub mod compile;
pub mod error;
pub mod file;

pub use compile::{
    load_dir, load_sources, placeholders, render, valid_id, Action, Intent, IntentSet, Keyword,
    Location, Pattern, Slot, TestCase, Thresholds, CALIBRATION_FILE, OUT_OF_SCOPE_FILE,
};
pub use error::{ErrorKind, LoadError, LoadErrors};
