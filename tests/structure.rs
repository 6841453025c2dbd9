//! The module structure of `src/` (issue 16), checked by reading the
//! source: which top-level module names which (`crate::x` paths, `use
//! crate::{x, y}` groups and `super::` chains that reach the crate root),
//! with comments and string literals blanked out first so a doc comment
//! or a message mentioning a module is not a dependency.
//!
//! Inline `mod x { … }` blocks are not tracked: a `super::` inside one is
//! counted from the file's own level, which can only over-report (a
//! `super::name` that happens to name a top-level module).
//!
//! Each rule is its own test and names every offending `file:line`. The
//! checker is plain text work with std only; `checker_*` tests feed it
//! small synthetic trees so it cannot silently pass by finding nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One source file, with comments and strings blanked (same line breaks).
struct Source {
    /// Relative to the crate root, with `/` separators: `src/app/mod.rs`.
    path: String,
    /// The top-level module it belongs to (`app`), or `None` for the crate
    /// roots `src/lib.rs` and `src/main.rs`.
    module: Option<String>,
    /// How many `super::` reach the crate root from the file's top level.
    depth: usize,
    code: String,
}

/// A reference from one file to a top-level module.
#[derive(Debug, Clone)]
struct Reference {
    from: Option<String>,
    to: String,
    path: String,
    line: usize,
}

fn read_tree(root: &Path) -> Vec<Source> {
    let src = root.join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for e in entries {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel: PathBuf = p.strip_prefix(&src).expect("under src").to_path_buf();
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let (module, depth) = match parts.as_slice() {
                [f] if f == "lib.rs" || f == "main.rs" => (None, 0),
                [f] => (Some(f.trim_end_matches(".rs").to_string()), 1),
                [dir, rest @ ..] => {
                    // src/a/mod.rs is `a` (depth 1), src/a/b.rs is `a::b`
                    // (depth 2), src/a/b/mod.rs is `a::b` too.
                    let last_is_mod = rest.last().is_some_and(|f| f == "mod.rs");
                    let depth = 1 + rest.len() - usize::from(last_is_mod);
                    (Some(dir.clone()), depth)
                }
                [] => unreachable!(),
            };
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Source {
                path: format!("src/{}", parts.join("/")),
                module,
                depth,
                code: blank_comments_and_strings(&text),
            }
        })
        .collect()
}

/// Replaces comments, string and char literals by spaces, keeping line
/// breaks so positions still point at the right line.
fn blank_comments_and_strings(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && !(i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // A raw string r"…" or r#"…"#: ends at `"` and as many `#`.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &c[i..j.min(c.len())] {
                blank(&mut out, ch);
            }
            i = j;
        } else if c[i] == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            let lit_end = if next == Some('\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match lit_end {
                Some(end) => {
                    for &ch in &c[i..=end] {
                        blank(&mut out, ch);
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c[i]);
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// The identifier starting at byte `at` of `s` (after spaces).
fn ident_at(s: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &s[at..];
    let skipped = rest.len() - rest.trim_start().len();
    let start = at + skipped;
    let len = s[start..]
        .char_indices()
        .find(|&(_, ch)| !is_ident(ch))
        .map_or(s.len() - start, |(n, _)| n);
    (len > 0).then(|| (&s[start..start + len], start + len))
}

/// Byte offsets where `word` starts as a whole word (no identifier
/// character right before it).
fn word_starts<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before_ok = !code[..i].chars().next_back().is_some_and(is_ident);
        let after_ok = !code[i + word.len()..]
            .chars()
            .next()
            .is_some_and(|ch| is_ident(ch) && !word.ends_with("::"));
        before_ok && after_ok
    })
}

fn line_of(code: &str, at: usize) -> usize {
    code[..at].matches('\n').count() + 1
}

/// The first identifiers of each item of a `{a::b, c, d::{e}}` group that
/// starts at byte `open` (the `{`).
fn group_heads(code: &str, open: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    let mut i = open;
    while i < code.len() {
        let ch = code[i..].chars().next().expect("in bounds");
        match ch {
            '{' => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_head = true,
            c if depth == 1 && expect_head && is_ident(c) => {
                if let Some((id, _)) = ident_at(code, i) {
                    heads.push((id.to_string(), i));
                    i += id.len();
                    expect_head = false;
                    continue;
                }
            }
            c if depth == 1 && !c.is_whitespace() => expect_head = false,
            _ => {}
        }
        i += ch.len_utf8();
    }
    heads
}

/// Every reference from `sources` to a top-level module of `modules`.
fn references(sources: &[Source], modules: &BTreeSet<String>) -> Vec<Reference> {
    let mut refs = Vec::new();
    for s in sources {
        let code = &s.code;
        let mut push = |name: &str, at: usize| {
            if modules.contains(name) {
                refs.push(Reference {
                    from: s.module.clone(),
                    to: name.to_string(),
                    path: s.path.clone(),
                    line: line_of(code, at),
                });
            }
        };
        let mut targets: Vec<usize> = word_starts(code, "crate::").map(|i| i + 7).collect();
        // `super::super::x` from a depth-2 file is `crate::x`.
        for start in word_starts(code, "super::") {
            if start >= 7 && code[..start].ends_with("super::") {
                continue; // counted from the first `super::` of the chain
            }
            let mut at = start;
            let mut n = 0;
            while code[at..].starts_with("super::") {
                n += 1;
                at += 7;
                at += code[at..].len() - code[at..].trim_start().len();
            }
            if s.depth > 0 && n >= s.depth {
                targets.push(at);
            }
        }
        for at in targets {
            let rest = code[at..].trim_start();
            let at = code.len() - rest.len();
            if rest.starts_with('{') {
                for (name, pos) in group_heads(code, at) {
                    push(&name, pos);
                }
            } else if let Some((name, _)) = ident_at(code, at) {
                push(name, at);
            }
        }
    }
    // One line naming a module twice is one place to fix.
    refs.sort_by(|a, b| (&a.path, a.line, &a.to).cmp(&(&b.path, b.line, &b.to)));
    refs.dedup_by(|a, b| a.path == b.path && a.line == b.line && a.to == b.to);
    refs
}

struct Crate {
    sources: Vec<Source>,
    refs: Vec<Reference>,
}

fn load(root: &Path) -> Crate {
    let sources = read_tree(root);
    let modules: BTreeSet<String> = sources.iter().filter_map(|s| s.module.clone()).collect();
    let refs = references(&sources, &modules);
    Crate { sources, refs }
}

fn this_crate() -> Crate {
    load(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The cycles between top-level modules: for each strongly connected
/// group, one cycle through it and every edge inside it with the place
/// that makes it.
fn cycles(refs: &[Reference]) -> Vec<String> {
    let mut edges: BTreeMap<(&str, &str), Vec<&Reference>> = BTreeMap::new();
    for r in refs {
        if let Some(from) = r.from.as_deref() {
            if from != r.to {
                edges.entry((from, &r.to)).or_default().push(r);
            }
        }
    }
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for &(a, b) in edges.keys() {
        graph.entry(a).or_default().insert(b);
        graph.entry(b).or_default();
    }
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for &m in &graph[n] {
                if seen.insert(m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&str, BTreeSet<&str>> = graph.keys().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for &n in graph.keys() {
        if done.contains(n) || !reachable[n].contains(n) {
            continue;
        }
        let group: BTreeSet<&str> = reachable[n]
            .iter()
            .copied()
            .filter(|m| reachable[m].contains(n))
            .collect();
        done.extend(group.iter().copied());
        // The shortest cycle through `n`, by breadth-first search.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([n]);
        'search: while let Some(a) = queue.pop_front() {
            for &b in &graph[a] {
                if !group.contains(b) || prev.contains_key(b) {
                    continue;
                }
                prev.insert(b, a);
                if b == n {
                    break 'search;
                }
                queue.push_back(b);
            }
        }
        let mut path = vec![n];
        let mut at = prev[n];
        while at != n {
            path.push(at);
            at = prev[at];
        }
        path.push(n);
        path.reverse();
        let mut msg = format!("cycle: {}", path.join(" -> "));
        for w in path.windows(2) {
            let r = edges[&(w[0], w[1])][0];
            let _ = write!(msg, "\n  {} -> {}: {}:{}", w[0], w[1], r.path, r.line);
        }
        let _ = write!(
            msg,
            "\n  every use inside the group {{{}}}:",
            group.iter().copied().collect::<Vec<_>>().join(", ")
        );
        for ((a, b), rs) in &edges {
            if group.contains(a) && group.contains(b) {
                for r in rs {
                    let _ = write!(msg, "\n    {a} -> {b}: {}:{}", r.path, r.line);
                }
            }
        }
        found.push(msg);
    }
    found
}

/// The references from any of `from` to any of `forbidden`.
fn forbidden_uses(c: &Crate, from: &[&str], forbidden: &[&str]) -> Vec<String> {
    c.refs
        .iter()
        .filter(|r| r.from.as_deref().is_some_and(|f| from.contains(&f)))
        .filter(|r| forbidden.contains(&r.to.as_str()))
        .map(|r| {
            format!(
                "{}:{}: `{}` uses `crate::{}`",
                r.path,
                r.line,
                r.from.as_deref().unwrap_or("?"),
                r.to
            )
        })
        .collect()
}

/// Where the identifier `word` appears in code outside the `allowed` path
/// prefixes.
fn word_outside(c: &Crate, word: &str, allowed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for s in &c.sources {
        if allowed.iter().any(|a| s.path.starts_with(a)) {
            continue;
        }
        for at in word_starts(&s.code, word) {
            out.push(format!(
                "{}:{}: names `{word}`",
                s.path,
                line_of(&s.code, at)
            ));
        }
    }
    out
}

#[track_caller]
fn assert_none(rule: &str, found: Vec<String>) {
    assert!(
        found.is_empty(),
        "{rule}: {} violation(s)\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn no_cycles_between_top_level_modules() {
    assert_none(
        "top-level modules of src/ must not name each other in a cycle",
        cycles(&this_crate().refs),
    );
}

#[test]
fn classify_and_intents_do_not_use_the_server_side() {
    assert_none(
        "classify and intents import nothing from conversation, handoff, store, app, http",
        forbidden_uses(
            &this_crate(),
            &["classify", "intents"],
            &["conversation", "handoff", "store", "app", "http"],
        ),
    );
}

/// The other half of the old `classify` <-> `intents` cycle: the classifier
/// is built from intents, never the other way round.
#[test]
fn intents_does_not_use_classify() {
    assert_none(
        "intents imports nothing from classify (normalisation and hashing live in util)",
        forbidden_uses(&this_crate(), &["intents"], &["classify"]),
    );
}

/// `util` is the leaf everyone may use, so it may use nothing of ours.
#[test]
fn util_is_a_leaf() {
    let c = this_crate();
    let ours: Vec<&str> = c
        .sources
        .iter()
        .filter_map(|s| s.module.as_deref())
        .collect();
    assert_none(
        "util depends on nothing of ours",
        forbidden_uses(&c, &["util"], &ours),
    );
}

#[test]
fn conversation_does_not_use_store_app_or_http() {
    assert_none(
        "conversation imports nothing from store, app, http",
        forbidden_uses(&this_crate(), &["conversation"], &["store", "app", "http"]),
    );
}

#[test]
fn store_does_not_use_handoff_or_http() {
    assert_none(
        "store imports nothing from handoff, http",
        forbidden_uses(&this_crate(), &["store"], &["handoff", "http"]),
    );
}

#[test]
fn utoipa_only_in_http() {
    assert_none(
        "utoipa (the OpenAPI description) belongs to src/http/ only",
        // The crates, and the derives that would come in through a
        // re-export.
        ["utoipa", "utoipa_axum", "ToSchema", "IntoParams"]
            .iter()
            .flat_map(|w| word_outside(&this_crate(), w, &["src/http/"]))
            .collect(),
    );
}

#[test]
fn sled_store_named_only_where_the_store_is_opened() {
    assert_none(
        "SledStore is named only in src/store/ and src/main.rs (where the store is opened); \
         everything else goes through the `Store` trait",
        word_outside(&this_crate(), "SledStore", &["src/store/", "src/main.rs"]),
    );
}

/// `src/lib.rs` denies unsafe code rather than forbidding it, so that the
/// one cache hint may allow it; nothing else may.
#[test]
fn unsafe_only_in_the_prefetch_hint() {
    let c = this_crate();
    assert_none(
        "unsafe code only in src/util/prefetch.rs (crates/int8bert is a crate of its own)",
        word_outside(&c, "unsafe", &["src/util/prefetch.rs"]),
    );
    // The rule sees the one it allows, so it is not passing on nothing.
    assert_eq!(word_outside(&c, "unsafe", &[]).len(), 1);
}

/// The checker read the real tree: a parse that found nothing would pass
/// every rule above.
#[test]
fn checker_sees_the_real_tree() {
    let c = this_crate();
    assert!(c.sources.len() > 20, "only {} files read", c.sources.len());
    let has = |a: &str, b: &str| {
        c.refs
            .iter()
            .any(|r| r.from.as_deref() == Some(a) && r.to == b)
    };
    assert!(has("classify", "intents"), "classify -> intents not seen");
    assert!(has("app", "store"), "app -> store not seen");
    assert!(has("http", "app"), "http -> app not seen");
}

/// A synthetic crate written into a temp dir.
fn synthetic(files: &[(&str, &str)]) -> (tempfile::TempDir, Crate) {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
    let c = load(dir.path());
    (dir, c)
}

#[test]
fn checker_reports_a_cycle_with_its_places() {
    let (_dir, c) = synthetic(&[
        (
            "src/lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod leaf;\n",
        ),
        ("src/a/mod.rs", "pub mod x;\n"),
        ("src/a/x.rs", "\n\nuse crate::b::Thing;\n"),
        ("src/b.rs", "fn f() { crate::c::g(); }\n"),
        ("src/c.rs", "use crate::{leaf, a::x};\n"),
        (
            "src/leaf.rs",
            "// crate::a is only mentioned\nconst S: &str = \"crate::a\";\n",
        ),
    ]);
    let found = cycles(&c.refs);
    assert_eq!(found.len(), 1, "{found:#?}");
    let msg = &found[0];
    assert!(msg.starts_with("cycle: a -> b -> c -> a"), "{msg}");
    assert!(msg.contains("a -> b: src/a/x.rs:3"), "{msg}");
    assert!(msg.contains("b -> c: src/b.rs:1"), "{msg}");
    assert!(msg.contains("c -> a: src/c.rs:1"), "{msg}");
    assert!(
        !msg.contains("leaf"),
        "comments and strings are not uses: {msg}"
    );
}

#[test]
fn checker_passes_an_acyclic_tree_and_reads_super_chains() {
    let (_dir, c) = synthetic(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\n"),
        ("src/a/mod.rs", "mod y;\nuse super::b;\n"),
        (
            "src/a/y.rs",
            "use super::Local;\nuse super::super::b::T;\nfn f<'a>(x: &'a str) -> char { 'x' }\n",
        ),
        (
            "src/b.rs",
            "const Q: char = '\"';\nconst R: &str = r#\"crate::a\"#;\n",
        ),
    ]);
    assert!(cycles(&c.refs).is_empty(), "{:?}", cycles(&c.refs));
    let edges: BTreeSet<(String, String, usize)> = c
        .refs
        .iter()
        .map(|r| (r.from.clone().unwrap_or_default(), r.path.clone(), r.line))
        .collect();
    assert_eq!(
        edges,
        BTreeSet::from([
            ("a".to_string(), "src/a/mod.rs".to_string(), 2),
            ("a".to_string(), "src/a/y.rs".to_string(), 2),
        ]),
        "`super::b` from a/mod.rs and `super::super::b` from a/y.rs reach b; \
         `super::Local` stays in a"
    );
}

#[test]
fn checker_reports_forbidden_uses_and_words() {
    let (_dir, c) = synthetic(&[
        (
            "src/lib.rs",
            "pub mod classify;\npub mod store;\npub mod http;\n",
        ),
        (
            "src/classify.rs",
            "use crate::{http::X};\n#[derive(utoipa::ToSchema)]\nstruct S;\n",
        ),
        ("src/store.rs", "pub struct SledStore;\n"),
        (
            "src/http/mod.rs",
            "use utoipa::OpenApi;\nstruct MySledStore;\n",
        ),
    ]);
    assert_eq!(
        forbidden_uses(&c, &["classify"], &["http", "store"]),
        vec!["src/classify.rs:1: `classify` uses `crate::http`".to_string()]
    );
    assert_eq!(
        word_outside(&c, "utoipa", &["src/http/"]),
        vec!["src/classify.rs:2: names `utoipa`".to_string()]
    );
    assert!(word_outside(&c, "SledStore", &["src/store"]).is_empty());
}
