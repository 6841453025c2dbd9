//! Replay numbers for BENCHMARKS.md: 10,000 conversations of about ten
//! visitor messages each (the shipped intents' examples, off-topic lines,
//! visitors asking for a person and writing to the agent), seeded straight
//! through the `Store` API into a temp sled store with the bot's real
//! replies (`conversation::step`), then replayed against an edited copy of
//! intents/ without the model, and the threshold what-if over the same
//! window.
//!
//! Run: `cargo bench --bench replay` (REPLAY_CONVERSATIONS changes the
//! 10,000).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use frontdesk::classify::Classifier;
use frontdesk::conversation::{
    step, Conversation, Decide, EscalationPolicy, Input, Rules, Texts, Visitor,
};
use frontdesk::replay::{self, Window};
use frontdesk::store::{SledStore, Store};

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_780_000_000_000;

/// Lines no shipped intent covers.
const OFF_TOPIC: &[&str] = &[
    "do you offer gift wrapping for presents",
    "can I pay in instalments with klarna",
    "what is the meaning of life",
    "is your warehouse hiring",
    "do you have a physical store in berlin",
    "can you recommend a good pizza place",
    "my cat walked on the keyboard",
    "do you price match other shops",
    "are your products vegan",
    "what's the weather like today",
];

/// splitmix64: a small deterministic generator, so every run seeds the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The inputs of conversation `n`: about ten visitor messages; one in ten
/// conversations asks for a person halfway and goes on with an agent.
fn script(n: usize, examples: &[String]) -> Vec<Input> {
    let mut rng = Rng(n as u64);
    let len = 8 + rng.below(5);
    let person_at = (rng.below(10) == 0).then_some(len / 2);
    let mut inputs = Vec::new();
    for k in 0..len {
        if Some(k) == person_at {
            inputs.push(Input::AskForPerson);
            inputs.push(Input::Claim {
                agent: "ann".into(),
            });
            inputs.push(Input::AgentMessage {
                agent: "ann".into(),
                text: "Hi, I'm Ann. How can I help?".into(),
            });
        }
        let text = if rng.below(10) < 2 {
            OFF_TOPIC[rng.below(OFF_TOPIC.len())].to_string()
        } else {
            examples[rng.below(examples.len())].clone()
        };
        inputs.push(Input::Visitor {
            text,
            client_id: format!("{n}-{k}"),
        });
    }
    if person_at.is_some() {
        inputs.push(Input::Close {
            agent: "ann".into(),
        });
    }
    inputs
}

/// Seeds `conversations` over the 7 days after `T0`, from 32 threads (the
/// store group-commits concurrent appends).
fn seed(store: &SledStore, conversations: usize, bot: &Classifier, examples: &[String]) -> usize {
    let next = AtomicUsize::new(0);
    let messages = AtomicUsize::new(0);
    let escalation = EscalationPolicy::default();
    let texts = Texts::default();
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(|| {
                let rules = Rules {
                    escalation: &escalation,
                    texts: &texts,
                };
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= conversations {
                        break;
                    }
                    let id = format!("c{n:06}");
                    let start = T0 + (n as i64 * 7 * DAY_MS) / conversations as i64;
                    let first = store
                        .create(&id, start, Visitor::default())
                        .expect("create");
                    let mut conv = Conversation::from_log([&first]);
                    let mut seq = first.seq;
                    for (k, input) in script(n, examples).into_iter().enumerate() {
                        if matches!(input, Input::Visitor { .. }) {
                            messages.fetch_add(1, Ordering::Relaxed);
                        }
                        // An input the state refuses (a close of a closed
                        // conversation) is skipped, as the server would refuse it.
                        let Ok(events) = step(&conv, input, bot, &rules) else {
                            continue;
                        };
                        if events.is_empty() {
                            continue;
                        }
                        let at = start + 20_000 * (k as i64 + 1);
                        let stored = store.append(&id, at, events).expect("append");
                        for r in &stored.records {
                            conv.apply(r);
                            seq = r.seq;
                        }
                    }
                    assert_eq!(conv.last_seq, seq);
                }
            });
        }
    });
    messages.into_inner()
}

/// A copy of intents/ with an admin's edit: two off-topic lines become
/// examples of intents, and one intent answers from a lower bar.
fn edited_copy(from: &Path, to: &Path) {
    let mut edits: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    edits.insert("gift_card.toml", vec![OFF_TOPIC[0]]);
    edits.insert("payment_methods.toml", vec![OFF_TOPIC[1]]);
    for e in std::fs::read_dir(from).expect("intents/").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut text = std::fs::read_to_string(e.path()).expect("read");
        if let Some(lines) = edits.get(name.as_str()) {
            for l in lines {
                text = text.replacen("examples = [", &format!("examples = [\n  {l:?},"), 1);
            }
        }
        if name == "discount_code.toml" {
            text = format!("threshold = 0.35\n{text}");
        }
        std::fs::write(to.join(&name), text).expect("write");
    }
}

fn main() {
    let conversations: usize = std::env::var("REPLAY_CONVERSATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let intents = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let bot = Classifier::load(&intents).expect("the shipped intents");
    let examples: Vec<String> = bot
        .intents()
        .intents
        .iter()
        .flat_map(|i| i.examples.iter().cloned())
        .collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path()).expect("open");
    let start = Instant::now();
    let messages = seed(&store, conversations, &bot, &examples);
    println!(
        "replay: seeded {conversations} conversations, {messages} visitor messages in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let edited_dir = tempfile::tempdir().expect("temp dir");
    edited_copy(&intents, edited_dir.path());
    let start = Instant::now();
    let edited = Classifier::load(edited_dir.path()).expect("the edited set validates");
    let load_s = start.elapsed().as_secs_f64();

    let escalation = EscalationPolicy::default();
    let texts = Texts::default();
    let rules = Rules {
        escalation: &escalation,
        texts: &texts,
    };
    let window = Window {
        from_ms: T0,
        to_ms: T0 + 8 * DAY_MS,
        max_conversations: replay::MAX_CONVERSATIONS,
        max_differences: usize::MAX,
    };
    let start = Instant::now();
    let read = replay::read_window(&store, &window).expect("read");
    println!(
        "replay: reading the window's {} logs alone: {:.2} s",
        read.len(),
        start.elapsed().as_secs_f64()
    );
    drop(read);
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..3 {
        let start = Instant::now();
        let r = replay::replay(&store, &window, &edited, &rules).expect("replay");
        times.push(start.elapsed().as_secs_f64());
        report = Some(r);
    }
    let r = report.expect("a report");
    times.sort_by(f64::total_cmp);
    println!(
        "replay: {} conversations, {} messages replayed ({} held by an agent, skipped), {} changed, in {:.2} s (median of 3: {:.2}, {:.2}, {:.2}); edited set loaded and tested in {load_s:.2} s",
        r.conversations, r.messages, r.skipped_with_agent, r.changed, times[1], times[0], times[1], times[2]
    );
    println!(
        "replay: changes {:?}; containment {:.3} → {:.3}, fallbacks {} → {}, handoffs {} → {}",
        r.changes
            .iter()
            .map(|c| format!("{} {}", c.change, c.count))
            .collect::<Vec<_>>(),
        r.before.containment,
        r.after.containment,
        r.before.fallbacks,
        r.after.fallbacks,
        r.before.handoffs,
        r.after.handoffs
    );

    let start = Instant::now();
    let curve = replay::thresholds(
        &store,
        &window,
        &bot,
        &escalation,
        &replay::threshold_grid(),
    )
    .expect("curve");
    println!(
        "replay: threshold what-if, {} points over {} messages, in {:.2} s",
        curve.points.len(),
        curve.messages,
        start.elapsed().as_secs_f64()
    );
}
