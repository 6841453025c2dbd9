//! The reply template language of actions: a small, pure, logic-less
//! language over a JSON value. Nothing in it executes code; a template is
//! parsed once (at load) into a tree and rendered by walking it.
//!
//! ```text
//! {{ status }}                     a field (dotted path; `line_items.0.name` indexes a list)
//! {{ tracking.url | "none yet" }}  a default when the field is missing, null or ""
//! {{#if tracking.url}}…{{else}}…{{/if}}   a condition: present and not null/false/""/0/[]/{}
//! {{#each line in line_items}}{{ line.name }} × {{ line.quantity }}{{/each}}
//! ```
//!
//! Values are inserted as plain text (the widget shows text, never HTML):
//! strings as they are, numbers and booleans as written, lists and objects
//! as nothing (or their default). Control characters in values become
//! spaces. Limits keep a hostile or huge reply harmless: blocks nest at most
//! `MAX_DEPTH` deep, a loop renders at most `MAX_ITEMS` items, a value at
//! most `MAX_VALUE_CHARS` characters, and the whole answer at most
//! `MAX_ANSWER_CHARS` (cut with "…").

use serde_json::Value;

/// Blocks (`#if`, `#each`) nested deeper than this are a parse error.
pub const MAX_DEPTH: usize = 8;
/// Items of a list a loop renders; the rest are left out.
pub const MAX_ITEMS: usize = 50;
/// Characters of one inserted value.
pub const MAX_VALUE_CHARS: usize = 500;
/// Characters of a rendered answer.
pub const MAX_ANSWER_CHARS: usize = 4000;
/// Characters of a template's source.
pub const MAX_SOURCE_CHARS: usize = 20_000;

/// A parse error or an unknown field, at byte `offset` of the template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Byte offset into the template source.
    pub offset: usize,
    pub message: String,
}

fn error(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

/// A field reference: a dotted path, and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<String>,
    pub offset: usize,
}

impl Path {
    fn text(&self) -> String {
        self.segments.join(".")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Field {
        path: Path,
        default: Option<String>,
    },
    If {
        cond: Path,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Each {
        var: String,
        list: Path,
        body: Vec<Node>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

/// One `{{ … }}` tag, classified.
enum Tag {
    Field(Path, Option<String>),
    If(Path),
    Else,
    EndIf,
    Each(String, Path),
    EndEach,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_path(s: &str, offset: usize) -> Result<Path, TemplateError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(error(offset, "empty field name"));
    }
    let segments: Vec<String> = s.split('.').map(str::to_string).collect();
    if let Some(bad) = segments.iter().find(|p| !is_name(p)) {
        return Err(error(
            offset,
            format!("bad field `{s}`: `{bad}` is not a name (letters, digits, `_`, `-`)"),
        ));
    }
    Ok(Path { segments, offset })
}

/// Parses the inside of one tag, which starts at byte `offset`.
fn parse_tag(inner: &str, offset: usize) -> Result<Tag, TemplateError> {
    let t = inner.trim();
    if let Some(rest) = t.strip_prefix("#if ") {
        return Ok(Tag::If(parse_path(rest, offset)?));
    }
    if let Some(rest) = t.strip_prefix("#each ") {
        let Some((var, list)) = rest.split_once(" in ") else {
            return Err(error(offset, "`#each` is written `{{#each item in list}}`"));
        };
        let var = var.trim();
        if !is_name(var) || var.contains('-') {
            return Err(error(offset, format!("bad loop variable `{var}`")));
        }
        return Ok(Tag::Each(var.to_string(), parse_path(list, offset)?));
    }
    match t {
        "else" => return Ok(Tag::Else),
        "/if" => return Ok(Tag::EndIf),
        "/each" => return Ok(Tag::EndEach),
        _ => {}
    }
    if t.starts_with('#') || t.starts_with('/') {
        return Err(error(
            offset,
            format!("unknown block `{t}` (known: #if, else, /if, #each, /each)"),
        ));
    }
    match t.split_once('|') {
        None => Ok(Tag::Field(parse_path(t, offset)?, None)),
        Some((path, default)) => {
            let d = default.trim();
            let quoted = d.len() >= 2 && d.starts_with('"') && d.ends_with('"');
            if !quoted {
                return Err(error(
                    offset,
                    format!(
                        "a default is a quoted text: `{{{{ {} | \"…\" }}}}`",
                        path.trim()
                    ),
                ));
            }
            Ok(Tag::Field(
                parse_path(path, offset)?,
                Some(d[1..d.len() - 1].to_string()),
            ))
        }
    }
}

/// Where a block was opened, while its body is read.
enum Open {
    If { cond: Path, then: Option<Vec<Node>> },
    Each { var: String, list: Path },
}

impl Template {
    /// Parses `source`; errors carry the byte offset of the offending tag.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.chars().count() > MAX_SOURCE_CHARS {
            return Err(error(
                0,
                format!("template is longer than {MAX_SOURCE_CHARS} characters"),
            ));
        }
        // The stack of open blocks, each with the nodes read so far in it.
        let mut stack: Vec<(Open, usize, Vec<Node>)> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut rest = 0;
        while rest < source.len() {
            let Some(open) = source[rest..].find("{{") else {
                nodes.push(Node::Text(source[rest..].to_string()));
                break;
            };
            let at = rest + open;
            if open > 0 {
                nodes.push(Node::Text(source[rest..at].to_string()));
            }
            let Some(close) = source[at + 2..].find("}}") else {
                return Err(error(at, "unclosed `{{`"));
            };
            let inner = &source[at + 2..at + 2 + close];
            if inner.contains("{{") {
                return Err(error(at, "unclosed `{{`"));
            }
            rest = at + 2 + close + 2;
            match parse_tag(inner, at)? {
                Tag::Field(path, default) => nodes.push(Node::Field { path, default }),
                Tag::If(cond) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(error(at, format!("blocks nest deeper than {MAX_DEPTH}")));
                    }
                    stack.push((
                        Open::If { cond, then: None },
                        at,
                        std::mem::take(&mut nodes),
                    ));
                }
                Tag::Each(var, list) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(error(at, format!("blocks nest deeper than {MAX_DEPTH}")));
                    }
                    stack.push((Open::Each { var, list }, at, std::mem::take(&mut nodes)));
                }
                Tag::Else => match stack.last_mut() {
                    Some((
                        Open::If {
                            then: then @ None, ..
                        },
                        _,
                        _,
                    )) => {
                        *then = Some(std::mem::take(&mut nodes));
                    }
                    _ => return Err(error(at, "`{{else}}` outside an `{{#if}}`")),
                },
                Tag::EndIf => match stack.pop() {
                    Some((Open::If { cond, then }, _, outer)) => {
                        let body = std::mem::replace(&mut nodes, outer);
                        let (then, otherwise) = match then {
                            Some(t) => (t, body),
                            None => (body, Vec::new()),
                        };
                        nodes.push(Node::If {
                            cond,
                            then,
                            otherwise,
                        });
                    }
                    _ => return Err(error(at, "`{{/if}}` without its `{{#if}}`")),
                },
                Tag::EndEach => match stack.pop() {
                    Some((Open::Each { var, list }, _, outer)) => {
                        let body = std::mem::replace(&mut nodes, outer);
                        nodes.push(Node::Each { var, list, body });
                    }
                    _ => return Err(error(at, "`{{/each}}` without its `{{#each}}`")),
                },
            }
        }
        if let Some((open, at, _)) = stack.pop() {
            let what = match open {
                Open::If { .. } => "`{{#if}}` is never closed with `{{/if}}`",
                Open::Each { .. } => "`{{#each}}` is never closed with `{{/each}}`",
            };
            return Err(error(at, what));
        }
        Ok(Template { nodes })
    }

    /// Every field the template reads that `sample` does not have: the
    /// check `frontdesk check` runs where an action declares a sample
    /// reply. A loop's variable stands for the sample list's first item
    /// (an empty sample list cannot be checked inside the loop).
    pub fn unknown_fields(&self, sample: &Value) -> Vec<TemplateError> {
        let mut out = Vec::new();
        let mut scope = Vec::new();
        check(&self.nodes, sample, &mut scope, &mut out);
        out
    }

    /// The text, with `data`'s values inserted as plain text.
    pub fn render(&self, data: &Value) -> String {
        let mut out = String::new();
        let mut scope = Vec::new();
        render(&self.nodes, data, &mut scope, &mut out);
        if out.chars().count() > MAX_ANSWER_CHARS {
            let mut cut: String = out.chars().take(MAX_ANSWER_CHARS - 1).collect();
            cut.push('…');
            return cut;
        }
        out
    }
}

/// `path` in `root`, with loop variables in `scope` shadowing the root.
/// `Err(())` when the path starts at a loop variable whose value is not
/// known (the unchecked inside of an empty sample list).
fn lookup<'a>(
    path: &Path,
    root: &'a Value,
    scope: &[(String, Option<&'a Value>)],
) -> Result<Option<&'a Value>, ()> {
    let (mut v, rest) = match scope.iter().rev().find(|(n, _)| *n == path.segments[0]) {
        Some((_, Some(v))) => (*v, &path.segments[1..]),
        Some((_, None)) => return Err(()),
        None => (root, &path.segments[..]),
    };
    for seg in rest {
        v = match v {
            Value::Object(m) => match m.get(seg) {
                Some(x) => x,
                None => return Ok(None),
            },
            Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get(i)) {
                Some(x) => x,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
    }
    Ok(Some(v))
}

fn check<'a>(
    nodes: &[Node],
    sample: &'a Value,
    scope: &mut Vec<(String, Option<&'a Value>)>,
    out: &mut Vec<TemplateError>,
) {
    fn known<'a>(
        path: &Path,
        sample: &'a Value,
        scope: &[(String, Option<&'a Value>)],
        out: &mut Vec<TemplateError>,
    ) {
        if let Ok(None) = lookup(path, sample, scope) {
            out.push(error(
                path.offset,
                format!(
                    "unknown field `{}`: the sample reply has no such field",
                    path.text()
                ),
            ));
        }
    }
    for n in nodes {
        match n {
            Node::Text(_) => {}
            Node::Field { path, .. } => known(path, sample, scope, out),
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                known(cond, sample, scope, out);
                check(then, sample, scope, out);
                check(otherwise, sample, scope, out);
            }
            Node::Each { var, list, body } => {
                known(list, sample, scope, out);
                let first = match lookup(list, sample, scope) {
                    Ok(Some(Value::Array(a))) => a.first(),
                    _ => None,
                };
                scope.push((var.clone(), first));
                check(body, sample, scope, out);
                scope.pop();
            }
        }
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

/// A value as the text a visitor reads: one line, bounded.
fn text_of(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    Some(
        s.chars()
            .take(MAX_VALUE_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

fn render<'a>(
    nodes: &[Node],
    root: &'a Value,
    scope: &mut Vec<(String, Option<&'a Value>)>,
    out: &mut String,
) {
    for n in nodes {
        // Past the limit nothing more can be shown; stop walking.
        if out.len() > MAX_ANSWER_CHARS * 4 {
            return;
        }
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Field { path, default } => {
                let v = lookup(path, root, scope).ok().flatten();
                match v.and_then(text_of) {
                    Some(s) => out.push_str(&s),
                    None => out.push_str(default.as_deref().unwrap_or("")),
                }
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let v = lookup(cond, root, scope).ok().flatten();
                let branch = if truthy(v) { then } else { otherwise };
                render(branch, root, scope, out);
            }
            Node::Each { var, list, body } => {
                if let Ok(Some(Value::Array(items))) = lookup(list, root, scope) {
                    for item in items.iter().take(MAX_ITEMS) {
                        scope.push((var.clone(), Some(item)));
                        render(body, root, scope, out);
                        scope.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, data: Value) -> String {
        Template::parse(t).expect("parses").render(&data)
    }

    #[test]
    fn fields_defaults_conditions_and_loops() {
        let order = json!({
            "status": "shipped",
            "tracking": {"url": ""},
            "total": 12.5,
            "paid": true,
            "line_items": [{"name": "Jacket", "quantity": 1}, {"name": "Socks", "quantity": 3}],
        });
        for (t, want) in [
            ("Order is {{status}}.", "Order is shipped."),
            ("{{ status }}", "shipped"),
            ("{{total}} {{paid}}", "12.5 true"),
            ("{{tracking.url | \"no link yet\"}}", "no link yet"),
            ("{{missing | \"-\"}}", "-"),
            ("{{missing}}", ""),
            ("{{line_items.1.name}}", "Socks"),
            ("{{#if tracking.url}}link{{else}}none{{/if}}", "none"),
            ("{{#if paid}}paid{{/if}}", "paid"),
            ("{{#if nothing}}x{{/if}}", ""),
            (
                "{{#each l in line_items}}{{l.quantity}}× {{l.name}}; {{/each}}",
                "1× Jacket; 3× Socks; ",
            ),
            (
                "{{#each l in line_items}}{{#if l.quantity}}{{l.name}} of {{status}} {{/if}}{{/each}}",
                "Jacket of shipped Socks of shipped ",
            ),
            ("{{#each l in status}}x{{/each}}", ""),
            ("{ not a tag }", "{ not a tag }"),
        ] {
            assert_eq!(r(t, order.clone()), want, "{t}");
        }
    }

    #[test]
    fn values_are_text_never_markup_or_lines() {
        let v = json!({"s": "<script>alert(1)</script>\nline\u{7}"});
        // Text stays text (the widget escapes it); control characters go.
        assert_eq!(r("{{s}}", v), "<script>alert(1)</script> line ");
        // A value that looks like a tag is not rendered again.
        assert_eq!(r("{{s}}", json!({"s": "{{s}}"})), "{{s}}");
    }

    #[test]
    fn parse_errors_name_the_place() {
        for (t, at, msg) in [
            ("ok {{status", 3, "unclosed"),
            ("{{#if a}}x", 0, "never closed"),
            ("x{{/if}}", 1, "without its"),
            ("ab{{else}}", 2, "outside"),
            ("{{#each in}}", 0, "written"),
            ("{{a b}}", 0, "not a name"),
            ("{{a | nope}}", 0, "quoted"),
            ("{{}}", 0, "empty"),
            ("{{#while x}}", 0, "unknown block"),
            ("{{#if a}}{{/each}}", 9, "without its"),
        ] {
            let e = Template::parse(t).expect_err(t);
            assert_eq!(e.offset, at, "{t}: {e}");
            assert!(e.message.contains(msg), "{t}: {e}");
        }
    }

    #[test]
    fn unknown_fields_against_the_sample() {
        let sample = json!({"status": "x", "lines": [{"name": "a"}], "empty": []});
        let t = Template::parse(
            "{{status}} {{stauts}}{{#each l in lines}}{{l.name}}{{l.nmae}}{{/each}}{{#each e in empty}}{{e.anything}}{{/each}}{{#if gone}}{{/if}}",
        )
        .unwrap();
        let errs = t.unknown_fields(&sample);
        let names: Vec<&str> = errs
            .iter()
            .map(|e| e.message.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(names, ["stauts", "l.nmae", "gone"]);
        assert_eq!(errs[0].offset, 11);
    }

    #[test]
    fn hostile_templates_and_data_never_panic() {
        // Deep nesting is refused, not recursed into.
        let deep = "{{#if a}}".repeat(1000) + &"{{/if}}".repeat(1000);
        assert!(Template::parse(&deep)
            .unwrap_err()
            .message
            .contains("deeper"));
        // A huge list renders at most MAX_ITEMS items and a bounded answer.
        let items: Vec<Value> = (0..100_000).map(|i| json!({"n": i})).collect();
        let out = r(
            "{{#each i in items}}{{i.n}},{{/each}}",
            json!({"items": items}),
        );
        assert_eq!(out.matches(',').count(), MAX_ITEMS);
        let long = "x".repeat(100_000);
        let out = r(
            "{{#each i in items}}{{i}}{{/each}}",
            json!({"items": vec![long; 40]}),
        );
        assert!(out.chars().count() <= MAX_ANSWER_CHARS);
        // Odd text: multi-byte characters around and inside tags.
        for t in [
            "é{{",
            "{{é}}",
            "}}{{",
            "{{ü | \"ö\"}}",
            "{{#each é in x}}{{/each}}",
            "{{{{}}}}",
        ] {
            let _ = Template::parse(t).map(|t| t.render(&json!({"ü": 1})));
        }
        // Bad UTF-8 cannot reach a &str; the caller decodes lossily first.
        let bytes = b"{{a}}\xff\xfe";
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(r(&text, json!({"a": 1})), "1\u{fffd}\u{fffd}");
        assert!(Template::parse(&"x".repeat(MAX_SOURCE_CHARS + 1)).is_err());
    }
}
