//! Each class of load error, pinned to the `path:line:col` it reports.

use frontdesk::classify::Classifier;
use frontdesk::conversation::Decide;
use frontdesk::intents::{load_dir, ErrorKind, LoadErrors};

use super::{intent, intent_dir};

fn errors(files: &[(&str, &str)]) -> (tempfile::TempDir, LoadErrors) {
    let dir = intent_dir(files);
    let errors = match Classifier::load(dir.path()) {
        Ok(_) => panic!("expected load errors for {files:?}"),
        Err(e) => e,
    };
    (dir, errors)
}

/// Asserts exactly one error, at `file:line:col`, whose message contains `needle`.
fn assert_one(files: &[(&str, &str)], file: &str, line: usize, col: usize, needle: &str) {
    let (dir, errors) = errors(files);
    assert_eq!(errors.0.len(), 1, "{errors}");
    let want = format!("{}:{line}:{col}: ", dir.path().join(file).display());
    let got = errors.0[0].to_string();
    assert!(got.starts_with(&want), "want prefix {want:?}, got {got:?}");
    assert!(got.contains(needle), "want {needle:?} in {got:?}");
}

#[test]
fn bad_toml_syntax() {
    let body = intent("keywords = [\"a\",\n  \"b\"\nexamples2 = 1\n");
    assert_one(&[("ship.toml", &body)], "ship.toml", 6, 1, "");
}

#[test]
fn unknown_field() {
    let body = intent("colour = \"blue\"\n");
    assert_one(
        &[("ship.toml", &body)],
        "ship.toml",
        4,
        1,
        "unknown field `colour`",
    );
}

#[test]
fn wrong_type() {
    let body = intent("keywords = \"shipping\"\n");
    assert_one(&[("ship.toml", &body)], "ship.toml", 4, 12, "invalid type");
}

#[test]
fn bad_regex_points_at_the_pattern() {
    let body = intent("patterns = ['fine', 'how (much']\n");
    assert_one(
        &[("ship.toml", &body)],
        "ship.toml",
        4,
        21,
        "bad regex in `patterns[1]`",
    );
}

#[test]
fn bad_slot_regex() {
    let body =
        intent("[[slots]]\nname = \"order_id\"\npattern = '[0-9'\nprompt = \"Which order?\"\n");
    assert_one(
        &[("ship.toml", &body)],
        "ship.toml",
        6,
        11,
        "bad regex in `slots[0].pattern`",
    );
}

#[test]
fn invalid_id() {
    assert_one(
        &[("Ship-Cost.toml", &intent(""))],
        "Ship-Cost.toml",
        1,
        1,
        "invalid intent id `Ship-Cost`",
    );
}

#[test]
fn nothing_to_match_on() {
    let body = "description = \"d\"\nanswer = \"a\"\n";
    assert_one(
        &[("empty.toml", body)],
        "empty.toml",
        1,
        1,
        "nothing to match on",
    );
}

#[test]
fn keyword_claimed_by_two_intents() {
    let a = intent("keywords = [\"delivery fee\"]\n");
    let b = "description = \"d\"\nanswer = \"a\"\nexamples = [\"when will it arrive\", \"delivery time\"]\nkeywords = [\"late\",\n  \"Delivery  Fee!\"]\n";
    let (dir, errors) = errors(&[("a.toml", &a), ("b.toml", b)]);
    assert_eq!(errors.0.len(), 1, "{errors}");
    let got = errors.0[0].to_string();
    let want = format!(
        "{}:5:3: keyword `delivery fee` is also claimed by intent `a` at {}:4:13",
        dir.path().join("b.toml").display(),
        dir.path().join("a.toml").display()
    );
    assert_eq!(got, want);
}

#[test]
fn placeholder_no_slot_provides() {
    let body = "description = \"d\"\nexamples = [\"where is my order\"]\nanswer = \"Order {order_id} is on its way, {name}.\"\n";
    assert_one(
        &[("order.toml", body)],
        "order.toml",
        3,
        10,
        "placeholder `{order_id}` is provided by no slot",
    );
}

#[test]
fn placeholder_provided_by_a_slot_loads() {
    let body = "description = \"d\"\nexamples = [\"where is my order\", \"track order\"]\nanswer = \"Order {order_id}.\"\n[[slots]]\nname = \"order_id\"\npattern = '\\d{6,10}'\nprompt = \"Which order?\"\n";
    let other = "description = \"d\"\nexamples = [\"how much is shipping\", \"postage price\"]\nanswer = \"a\"\n";
    let dir = intent_dir(&[("order.toml", body), ("ship.toml", other)]);
    let set = load_dir(dir.path()).expect("loads");
    assert_eq!(set.intents.len(), 2);
}

#[test]
fn test_that_does_not_classify_to_its_intent() {
    let ship = intent("tests = [\"how much is shipping\",\n  \"where is my parcel\"]\n");
    let order = "description = \"d\"\nanswer = \"a\"\nexamples = [\"where is my parcel\", \"track my parcel\", \"where is my order\"]\n";
    let (dir, errors) = errors(&[("ship.toml", &ship), ("order.toml", order)]);
    assert_eq!(errors.0.len(), 1, "{errors}");
    let got = errors.0[0].to_string();
    assert!(
        got.starts_with(&format!(
            "{}:5:3: test \"where is my parcel\" classifies as order",
            dir.path().join("ship.toml").display()
        )),
        "{got}"
    );
    assert!(matches!(errors.0[0].kind, ErrorKind::TestFailed { .. }));
}

#[test]
fn bad_action_and_threshold_and_missing_answer_all_reported() {
    let body = "description = \"d\"\nexamples = [\"hi\"]\naction = \"dance\"\nthreshold = 1.5\n";
    let (_dir, errors) = errors(&[("x.toml", body)]);
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 3, "{text}");
    assert!(
        text.contains("x.toml:1:1: missing required field `answer`"),
        "{text}"
    );
    assert!(
        text.contains("x.toml:3:10: unknown action `dance`"),
        "{text}"
    );
    assert!(
        text.contains("x.toml:4:13: threshold 1.5 is outside (0, 1]"),
        "{text}"
    );
}

#[test]
fn every_file_is_reported_not_just_the_first() {
    let (_dir, errors) = errors(&[
        (
            "a.toml",
            "description = \"d\"\nanswer = \"a\"\npatterns = ['(']\n",
        ),
        ("b.toml", "nonsense"),
        ("c.toml", &intent("")),
    ]);
    assert_eq!(errors.0.len(), 2, "{errors}");
}

#[test]
fn calibration_naming_an_unknown_intent() {
    let cal = "answer = 0.6\nclarify = 0.3\n[intents]\nnope = 0.7\n";
    assert_one(
        &[("ship.toml", &intent("")), ("_calibration.toml", cal)],
        "_calibration.toml",
        4,
        1,
        "unknown intent `nope`",
    );
}

#[test]
fn empty_directory_and_missing_directory() {
    let (_dir, errors) = errors(&[]);
    assert!(errors.to_string().contains("no intent files"), "{errors}");
    let missing = Classifier::load(std::path::Path::new("/nonexistent/frontdesk/intents"));
    assert!(missing.unwrap_err().to_string().contains("cannot read"));
}

/// Regression: byte offsets inside multi-byte text must not panic or shift
/// columns (columns count characters).
#[test]
fn non_ascii_and_binary_input_never_panics() {
    let body =
        "description = \"café ☕\"\nanswer = \"ok\"\nexamples = [\"crème brûlée\"]\nbogus = 1\n";
    assert_one(
        &[("cafe.toml", body)],
        "cafe.toml",
        4,
        1,
        "unknown field `bogus`",
    );
    let dir = intent_dir(&[]);
    std::fs::write(dir.path().join("bin.toml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let err = Classifier::load(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("bin.toml:1:1: cannot read"),
        "{err}"
    );
}

/// Every prefix of a valid file is either valid or a located error: never a
/// panic (a cheap stand-in for fuzzing the loader with half-saved edits).
#[test]
fn truncated_files_never_panic() {
    let full = std::fs::read_to_string(super::default_intents().join("order_status.toml")).unwrap();
    let mut cut = 0;
    while cut < full.len() {
        if full.is_char_boundary(cut) {
            let dir = intent_dir(&[("order_status.toml", &full[..cut])]);
            if let Err(e) = load_dir(dir.path()) {
                for err in &e.0 {
                    assert!(err.line >= 1 && err.col >= 1, "{err}");
                }
            }
        }
        cut += 7;
    }
}

#[test]
fn calibration_values_are_checked() {
    let cal = "answer = 0.2\nclarify = 0.9\nmargin = -4.0\nclarify_coverage = 7.0\n[intents]\nship = 42.0\n";
    let (dir, errors) = errors(&[("ship.toml", &intent("")), ("_calibration.toml", cal)]);
    let text = errors.to_string();
    let p = dir.path().join("_calibration.toml");
    for want in [
        format!("{}:3:1: threshold -4 is outside (0, 1]", p.display()),
        format!("{}:4:1: threshold 7 is outside (0, 1]", p.display()),
        format!("{}:6:1: threshold 42 is outside (0, 1]", p.display()),
        format!(
            "{}:2:1: clarify threshold 0.9 is above the answer threshold 0.2",
            p.display()
        ),
    ] {
        assert!(text.contains(&want), "want {want:?} in:\n{text}");
    }
}

#[test]
fn slot_prompts_and_names() {
    let body = intent("[[slots]]\nname = \"name\"\npattern = 'x'\nprompt = \"who?\"\n[[slots]]\nname = \"order_id\"\npattern = '\\d+'\nprompt = \"Order {nope}, {name}?\"\n");
    let (_dir, errors) = errors(&[("ship.toml", &body)]);
    let text = errors.to_string();
    assert!(
        text.contains("ship.toml:5:8: invalid slot name `name`"),
        "{text}"
    );
    assert!(
        text.contains("ship.toml:11:10: `slots[1].prompt` uses `{nope}`"),
        "{text}"
    );
    assert_eq!(errors.0.len(), 2, "{text}");
}

/// Regression (newcomer review): an unknown field used to hide every other
/// problem of its file.
#[test]
fn an_unknown_field_does_not_hide_the_other_problems() {
    let body = "description = \"d\"\ncolour = \"red\"\nanswer = \"Order {order}\"\nexamples = [\"hi\"]\nsize = [\n  1,\n  2]\nthreshold = 1.5\n";
    let (_dir, errors) = errors(&[("x.toml", body)]);
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 4, "{text}");
    for want in [
        "x.toml:2:1: unknown field `colour`",
        "x.toml:3:10: answer placeholder `{order}`",
        "x.toml:5:1: unknown field `size`",
        "x.toml:8:13: threshold 1.5",
    ] {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
    // In file order.
    let lines: Vec<usize> = errors.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 5, 8]);
}

#[test]
fn patterns_that_can_never_match_and_wordless_examples() {
    let body = "description = \"d\"\nanswer = \"a\"\nexamples = [\"hi\", \"!!!\"]\npatterns = ['Refund', '(?i)Refund', '\\D+\\p{Lu}', 'café']\n";
    let (_dir, errors) = errors(&[("x.toml", body)]);
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 3, "{text}");
    assert!(
        text.contains("x.toml:3:19: `examples[1] (after normalisation)` must not be empty"),
        "{text}"
    );
    assert!(
        text.contains("x.toml:4:13: `patterns[0]` can never match: it contains `R`"),
        "{text}"
    );
    assert!(
        text.contains("`patterns[3]` can never match: it contains `é`"),
        "{text}"
    );
}

#[test]
fn named_groups_and_escapes_are_not_literals() {
    let body = "description = \"d\"\nanswer = \"a\"\nexamples = [\"where is order 123\"]\npatterns = ['order (?P<OrderId>\\d+)', 'x(?<Name>y)', '\\PL\\x{41}\\W']\n";
    let dir = super::intent_dir(&[("x.toml", body)]);
    if let Err(e) = load_dir(dir.path()) {
        panic!("{e}");
    }
}

/// `menu = N` (issue 19, item 4: the admin chooses the menu's topics):
/// a place outside 1-99, or on an intent that does not answer, is an error
/// at the value.
#[test]
fn a_bad_menu_place_is_reported_at_its_value() {
    assert_one(
        &[(
            "x.toml",
            "description = \"d\"\nexamples = [\"hi\"]\nanswer = \"a\"\nmenu = 0\n",
        )],
        "x.toml",
        4,
        8,
        "menu 0 is not a place in the menu",
    );
    assert_one(
        &[(
            "x.toml",
            "description = \"d\"\nexamples = [\"hi\"]\nanswer = \"a\"\naction = \"handoff\"\nmenu = 1\n",
        )],
        "x.toml",
        5,
        8,
        "`menu` is for intents that answer; this one's action is `handoff`",
    );
}
