//! The `frontdesk` command line: parses arguments and calls the library.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use frontdesk::classify::{Classifier, Model};
use frontdesk::config::StoreConfig;
use frontdesk::conversation::trace;
use frontdesk::conversation::{self, Decide};
use frontdesk::eval;
use frontdesk::intents;
use frontdesk::store::PgStore;
use frontdesk::store::Store;

/// `println!` that ends the program quietly when stdout is gone (`| head`)
/// instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    };
}

#[derive(Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "A customer-support chatbot for websites"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bot: visitor, agent and admin APIs over HTTP and WebSocket.
    Serve {
        /// Settings; `./frontdesk.toml` when present, else defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen here instead of `[server] bind` (port 0: any free port).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Print a fully commented frontdesk.toml with every default.
    DefaultConfig,
    /// Manage agents (while the server is stopped; a running server takes
    /// new agents through the admin API).
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Check the store for damage, and back it up.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Validate the intent files; list every error as path:line:col.
    Check {
        #[arg(long, default_value = "intents")]
        intents: PathBuf,
    },
    /// Run the intents' inline tests; show the decision trace of failures.
    Test {
        #[arg(long, default_value = "intents")]
        intents: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Talk to the bot in the terminal; each reply is followed by its trace.
    Chat {
        #[arg(long, default_value = "intents")]
        intents: PathBuf,
        /// The visitor's name, for `{name}` in answers.
        #[arg(long)]
        name: Option<String>,
        /// Settings (escalation policy); `./frontdesk.toml` when present.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Turn a labelled CSV (text,intent) into intent files; `oos` rows
    /// become known out-of-scope examples.
    Import {
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Replace intent files of the same names (their answers, keywords
        /// and tests are lost).
        #[arg(long)]
        force: bool,
    },
    /// Classify each row of a labelled CSV as a first message and report.
    Eval {
        data: PathBuf,
        #[arg(long, default_value = "intents")]
        intents: PathBuf,
        /// Write text,gold,predicted,decision,confidence,latency_us here.
        #[arg(long)]
        predictions: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Print in-scope accuracy against OOS recall over thresholds.
        #[arg(long)]
        sweep: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// How the bot and the team did (README, "Reports"): through the
    /// running server with an admin token, else from `[server] data_dir`
    /// directly (server stopped).
    Report {
        /// The last N days, today included: `7d` (default), `30d`.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        since: Option<String>,
        /// First day, YYYY-MM-DD in the shop's time zone.
        #[arg(long)]
        from: Option<String>,
        /// Last day, inclusive.
        #[arg(long)]
        to: Option<String>,
        /// Print the report as JSON (the API's summary).
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        /// An admin token: ask the running server (or set FRONTDESK_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// The server's address (default: `[server] bind`, on loopback).
        #[arg(long)]
        url: Option<String>,
    },
    /// Rewrite the store into a fresh directory holding only live data (sled
    /// does not give back the space of deleted conversations). Offline: stop
    /// the server first.
    Compact {
        /// The directory (default: `[server] data_dir`).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Decide the stored visitor messages of a recent window again with an
    /// edited intent set and show what would change (nothing is written).
    /// Opens the store of `[server] data_dir` directly: stop the server
    /// first, or use the admin page's preview (POST /api/v1/admin/replay).
    Replay {
        /// How far back: `7d`, `36h`.
        #[arg(long, default_value = "7d")]
        since: String,
        /// The edited intent directory (validated like `frontdesk check`).
        #[arg(long)]
        intents: PathBuf,
        /// The store (default: `[server] data_dir`).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Settings (escalation rules, texts, model); `./frontdesk.toml`
        /// when present.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also print containment against bad answers over answer
        /// thresholds, for the current set of `[server] intents_dir`.
        #[arg(long)]
        thresholds: bool,
    },
    /// Choose thresholds from a labelled CSV by cross-validation and write
    /// them to DIR/_calibration.toml.
    Calibrate {
        data: PathBuf,
        #[arg(long, default_value = "intents")]
        intents: PathBuf,
        /// Share of `oos` rows the bot must decline to answer.
        #[arg(long, default_value_t = 0.80)]
        target_oos_recall: f64,
        /// Share of answered rows that must be right at the answer threshold.
        #[arg(long, default_value_t = 0.95)]
        target_precision: f64,
        /// Cross-validation folds (README, "Thresholds"); by default 20, or
        /// one per row when there are fewer rows.
        #[arg(long)]
        folds: Option<usize>,
        #[command(flatten)]
        model: ModelArgs,
    },
}

/// The semantic layer's options, shared by the commands that classify.
#[derive(clap::Args)]
struct ModelArgs {
    /// The sentence-embedding model (feature `semantic` or `transformer`;
    /// see models/README.md): adds the semantic layer.
    #[arg(long)]
    model: Option<PathBuf>,
    /// What the model computes in: auto, f32, bf16 or int8 (auto: int8
    /// where the CPU has int8 dot products, else bf16 where it has bfloat16
    /// ones, else f32).
    #[arg(long, default_value = "auto")]
    precision: frontdesk::classify::Precision,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent (or give one a new token) and print the token once.
    Add {
        name: String,
        /// May also use the admin API (without it, an existing agent keeps
        /// its role).
        #[arg(long)]
        admin: bool,
        /// Use this token instead of a generated one (16+ characters).
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Read everything in a store (a copy of it: nothing in DIR changes)
    /// and report what is damaged; exit 1 if anything is. Offline: stop the
    /// server first, or verify a backup.
    Verify {
        /// The directory (default: `[server] data_dir`).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a consistent copy of the store into DIR (which must not exist
    /// or be empty). With the server running, pass an admin token and the
    /// copy is streamed from it while it serves; without one, the store of
    /// `[server] data_dir` is opened directly (server stopped).
    Backup {
        dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// An admin token: back up through the running server (or set
        /// FRONTDESK_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// The server's address (default: `[server] bind`, on loopback).
        #[arg(long)]
        url: Option<String>,
    },
    /// Bring a PostgreSQL store's schema up to date (`[store] backend =
    /// "postgres"`; the server also does it at start) and print its version.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Copy a whole shop from one store into an empty one, then count what
    /// both hold and fail on any difference. Offline: stop the server.
    Copy {
        /// `sled:DIR` or `postgres:URL` (`postgres:` alone: the url of
        /// `[store]`, e.g. from FRONTDESK_STORE__URL).
        #[arg(long)]
        from: String,
        /// `sled:DIR` (must not exist or be empty) or `postgres:URL` (a
        /// database without conversations or agents).
        #[arg(long)]
        to: String,
        /// For `postgres:` and the pool size.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a directory without running its inline tests (they may be what
/// the user wants to see fail).
fn load_untested(dir: &std::path::Path, model: &Model) -> Result<Classifier, ExitCode> {
    match intents::load_dir(dir) {
        Ok(set) => {
            if set.calibration_stale {
                eprintln!(
                    "warning: {}: thresholds were measured on other intent files; run `frontdesk calibrate` again",
                    dir.join(intents::CALIBRATION_FILE).display()
                );
            }
            Classifier::new_with(Arc::new(set), model).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            })
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            Err(ExitCode::FAILURE)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check { intents: dir } => {
            let start = Instant::now();
            match Classifier::load(&dir) {
                Ok(c) => {
                    let set = c.intents();
                    warn_stale(set);
                    let examples: usize = set.intents.iter().map(|i| i.examples.len()).sum();
                    out!(
                        "ok: {} intents, {} examples, {} out-of-scope examples, thresholds from {} ({:.0} ms)",
                        set.intents.len(),
                        examples,
                        set.out_of_scope.len(),
                        set.thresholds.source,
                        start.elapsed().as_secs_f64() * 1e3
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!("{} error(s)", errors.0.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Test {
            intents: dir,
            model,
        } => {
            let model = load_model(model)?;
            let c = match load_untested(&dir, &model) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let results = c.run_tests();
            let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
            for f in &failed {
                out!(
                    "FAIL {}: {:?} expected {}, got {}",
                    f.location,
                    f.text,
                    f.intent,
                    f.got
                );
                out!("{}", trace::trace(&f.outcome.turn()));
                match f
                    .outcome
                    .ranking
                    .candidates
                    .iter()
                    .position(|c| c.intent == f.intent)
                {
                    Some(i) if i >= 3 => out!(
                        "  {} is ranked {} with {:.2}",
                        f.intent,
                        i + 1,
                        f.outcome.ranking.candidates[i].score
                    ),
                    Some(_) => {}
                    None => out!("  {} is not among the top 5", f.intent),
                }
            }
            out!(
                "{} passed, {} failed",
                results.len() - failed.len(),
                failed.len()
            );
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Chat {
            intents: dir,
            name,
            config,
            model,
        } => {
            let model = load_model(model)?;
            let c = match load_untested(&dir, &model) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let config = load_config(config)?;
            let visitor = conversation::Visitor {
                name,
                ..Default::default()
            };
            let stdin = std::io::stdin();
            out!(
                "frontdesk chat: {} intents from {}. Type a message; an empty line or ctrl-d ends.",
                c.intents().intents.len(),
                dir.display()
            );
            let mut chat = ChatLog::new(visitor.clone());
            loop {
                let mut stdout = std::io::stdout();
                if write!(stdout, "> ").and_then(|_| stdout.flush()).is_err() {
                    break;
                }
                let mut raw = Vec::new();
                if stdin.lock().read_until(b'\n', &mut raw)? == 0 {
                    break;
                }
                // A stray invalid byte must not end the session.
                let line = String::from_utf8_lossy(&raw).trim().to_string();
                if line.is_empty() {
                    break;
                }
                chat.turns += 1;
                let input = conversation::Input::Visitor {
                    text: line.clone(),
                    client_id: chat.turns.to_string(),
                };
                let rules = conversation::Rules {
                    escalation: &config.escalation,
                    texts: &config.texts,
                };
                let events = match conversation::step(&chat.conv, input, &c, &rules) {
                    Ok(e) => e,
                    Err(e) => {
                        out!("(not possible: {e})");
                        continue;
                    }
                };
                chat.append(&events);
                for e in &events {
                    print_event(e);
                }
                // The decision the bot acted on, as it is stored (one per
                // turn: a fallback's offer or an answer's handoff repeat it).
                if let Some(turn) = events.iter().find_map(|e| e.decision()) {
                    out!("{}", trace::trace(turn));
                }
                if matches!(
                    chat.conv.phase,
                    conversation::Phase::Queued { .. } | conversation::Phase::Closed
                ) {
                    out!("(a new conversation starts)");
                    chat = ChatLog::new(visitor.clone());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config, bind } => {
            let mut config = load_config(config)?;
            if let Some(bind) = bind {
                config.server.bind = bind;
            }
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DefaultConfig => {
            out!("{}", frontdesk::config::DEFAULT_CONFIG.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent {
            command:
                AgentCommand::Add {
                    name,
                    admin,
                    token,
                    config,
                },
        } => {
            let config = load_config(config)?;
            let store = open_offline(&config, "then use POST /api/v1/admin/agents")?;
            let created =
                frontdesk::app::add_agent_to(&*store, &name, admin.then_some(true), token)
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            out!(
                "{} `{}` {}; its token (shown once, only a hash is kept):\n{}",
                if created.admin { "admin" } else { "agent" },
                created.name,
                if created.existed {
                    "has a new token (the old one no longer works)"
                } else {
                    "created"
                },
                created.token
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Verify { data, config },
        } => {
            let data = sled_dir(data, config, "store verify")?;
            let start = Instant::now();
            let report = frontdesk::store::SledStore::verify(&data)?;
            for n in &report.notes {
                out!("note: {n}");
            }
            if report.problems.is_empty() {
                out!(
                    "{}: whole: {} conversations, {} events, read in {:.1} s",
                    data.display(),
                    report.conversations,
                    report.events,
                    start.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    out!("{}: damaged: {p}", data.display());
                }
                out!(
                    "{}: DAMAGED ({} problems). Restore the last backup (README, \"Backups\").",
                    data.display(),
                    report.problems.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Report {
            since,
            from,
            to,
            json,
            config,
            token,
            url,
        } => {
            let config = load_config(config)?;
            let zone = frontdesk::report::Zone::of(config.business_hours.as_ref());
            let now = frontdesk::util::clock::Clock::system().now_ms();
            let today = zone.today(now);
            let period = match since {
                Some(s) => {
                    let days = s
                        .strip_suffix('d')
                        .and_then(|n| n.parse::<u32>().ok())
                        .filter(|n| (1..=366).contains(n))
                        .with_context(|| {
                            format!("--since {s:?}: write a number of days, 1d to 366d")
                        })?;
                    frontdesk::report::Period::last(days, today)?
                }
                None => frontdesk::report::Period::parse(from.as_deref(), to.as_deref(), today)?,
            };
            let token = token.or_else(|| std::env::var("FRONTDESK_TOKEN").ok());
            let report = match token {
                Some(token) => {
                    let url = url.unwrap_or_else(|| {
                        let bind = config
                            .server
                            .bind
                            .replace("0.0.0.0", "127.0.0.1")
                            .replace("[::]", "[::1]");
                        format!("http://{bind}")
                    });
                    let path = format!(
                        "/api/v1/admin/reports/summary?from={}&to={}",
                        period.from, period.to
                    );
                    let body = get_online(&url, &path, &token)?;
                    serde_json::from_slice::<frontdesk::report::Report>(&body)
                        .context("the server's report does not parse")?
                }
                None => {
                    let store = open_offline(&config, "then pass --token ADMIN_TOKEN to ask it")?;
                    frontdesk::report::report(&*store, &period, &zone, config.reports, now)?
                }
            };
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", frontdesk::report::text::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command:
                StoreCommand::Backup {
                    dir,
                    config,
                    token,
                    url,
                },
        } => {
            let config = load_config(config)?;
            let start = Instant::now();
            let token = token.or_else(|| std::env::var("FRONTDESK_TOKEN").ok());
            if token.is_none() {
                if let StoreConfig::Postgres(pg) = &config.store {
                    anyhow::bail!(
                        "[store] is PostgreSQL ({}): an offline `store backup` reads a sled directory. Back the database up with pg_dump, copy the shop into a sled directory with `frontdesk store copy --from postgres: --to sled:{}`, or pass --token ADMIN_TOKEN to back up through the running server (README, \"PostgreSQL\")",
                        pg.shown(),
                        dir.display()
                    );
                }
            }
            // DIR is claimed before anything else: it must not exist or be
            // empty, and on failure only what this command made is removed
            // (never a directory that was there, let alone a store).
            let existed = dir.exists();
            let writer = frontdesk::store::BackupWriter::create(&dir)?;
            let result = match token {
                Some(token) => {
                    let url = url.unwrap_or_else(|| {
                        let bind = config
                            .server
                            .bind
                            .replace("0.0.0.0", "127.0.0.1")
                            .replace("[::]", "[::1]");
                        format!("http://{bind}")
                    });
                    backup_online(&url, &token, writer)
                }
                None => {
                    let data = &config.server.data_dir;
                    frontdesk::store::SledStore::open(data)
                        .with_context(|| {
                            format!(
                                "{}: cannot open the store (is `frontdesk serve` running? then pass --token ADMIN_TOKEN to back up through it)",
                                data.display()
                            )
                        })
                        .and_then(|s| Ok(s.backup_into(writer)?))
                }
            };
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    undo_copy_into(&dir, existed);
                    return Err(e);
                }
            };
            out!(
                "backed up {} conversations ({} events) into {}: {:.1} MB in {:.1} s",
                report.conversations,
                report.events,
                dir.display(),
                report.bytes as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Migrate { config },
        } => {
            let config = load_config(config)?;
            let StoreConfig::Postgres(pg) = &config.store else {
                anyhow::bail!(
                    "[store] backend is sled: its files need no migration (set backend = \"postgres\" and a url, README \"PostgreSQL\")"
                );
            };
            let start = Instant::now();
            let version =
                PgStore::migrate(&pg.url.0).map_err(|e| anyhow::anyhow!("{}: {e}", pg.shown()))?;
            out!(
                "{}: schema version {version} ({:.1} s)",
                pg.shown(),
                start.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Copy { from, to, config },
        } => copy_store(&from, &to, config),
        Command::Compact { data, config } => {
            let data = sled_dir(data, config, "compact")?;
            if !data.is_dir() {
                anyhow::bail!("{}: no store here", data.display());
            }
            let start = Instant::now();
            let (before, after) = frontdesk::store::SledStore::compact(&data)
                .with_context(|| format!("compacting {}", data.display()))?;
            out!(
                "compacted {}: {:.1} MB → {:.1} MB in {:.1} s",
                data.display(),
                before as f64 / 1e6,
                after as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { data, out, force } => {
            let start = Instant::now();
            let rows = eval::read_csv(&data)?;
            let report = eval::import(&rows, &data, &out, force)?;
            out!(
                "imported {} intents ({} examples) and {} out-of-scope examples into {} in {:.0} ms",
                report.intents,
                report.examples,
                report.out_of_scope,
                out.display(),
                start.elapsed().as_secs_f64() * 1e3
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            data,
            intents: dir,
            predictions,
            json,
            sweep,
            model,
        } => {
            let model = load_model(model)?;
            let rows = eval::read_csv(&data)?;
            let start = Instant::now();
            let c = match load_untested(&dir, &model) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let load_ms = start.elapsed().as_secs_f64() * 1e3;
            warn_unknown_labels(c.intents(), &rows);
            let preds = eval::evaluate(&c, &rows);
            if let Some(p) = &predictions {
                eval::write_predictions(p, &preds)?;
            }
            let s = eval::summarize(&preds);
            let grid: Vec<f32> = (1..20).map(|i| i as f32 * 0.05).collect();
            if json {
                let points = if sweep {
                    Some(eval::sweep(&preds, &grid))
                } else {
                    None
                };
                out!("{}", eval::summary_json(&s, load_ms, points.as_deref()));
            } else {
                print_summary(&s, load_ms);
            }
            if sweep && !json {
                out!("threshold  inscope_acc  oos_recall  inscope_rejected  (score alone: the policy's coverage rule and handoffs are not applied)");
                for p in eval::sweep(&preds, &grid) {
                    out!(
                        "{:>9.2}  {:>11.4}  {:>10}  {:>16.4}",
                        p.threshold,
                        p.inscope_accuracy,
                        p.oos_recall
                            .map(|r| format!("{r:.4}"))
                            .unwrap_or_else(|| "n/a".into()),
                        p.inscope_rejected
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            since,
            intents: dir,
            data,
            config,
            json,
            thresholds,
        } => replay(since, dir, data, config, json, thresholds),
        Command::Calibrate {
            data,
            intents: dir,
            target_oos_recall,
            target_precision,
            folds,
            model,
        } => {
            let model = load_model(model)?;
            let set = match intents::load_dir(&dir) {
                Ok(s) => s,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let rows = eval::read_csv(&data)?;
            warn_unknown_labels(&set, &rows);
            let start = Instant::now();
            let options = eval::CalibrateOptions {
                folds: folds
                    .unwrap_or_else(|| eval::CalibrateOptions::default().folds.min(rows.len())),
                target_oos_recall,
                target_precision,
            };
            let cal = eval::calibrate(&set, &rows, &options, &model)?;
            let path = eval::write_calibration(&dir, &cal.raw)
                .with_context(|| format!("writing calibration into {}", dir.display()))?;
            out!(
                "cross-validated on {} rows in {:.1} s: answer ≥ {:.2}, clarify ≥ {:.2}, {} per-intent threshold(s); wrote {}",
                rows.len(),
                start.elapsed().as_secs_f64(),
                cal.raw.answer,
                cal.raw.clarify,
                cal.raw.intents.len(),
                path.display()
            );
            let at = eval::sweep(&cal.predictions, &[cal.raw.clarify as f32]);
            if let Some(p) = at.first() {
                out!(
                    "on the folds at clarify {:.2}: in-scope accuracy {:.4}, oos recall {}",
                    p.threshold,
                    p.inscope_accuracy,
                    p.oos_recall
                        .map(|r| format!("{r:.4}"))
                        .unwrap_or_else(|| "n/a (no oos rows)".into())
                );
            }
            // The new thresholds may turn inline tests into failures: say so
            // now, not at the next load.
            if let Err(errors) = Classifier::load(&dir) {
                eprintln!(
                    "warning: with these thresholds, {} inline test(s) no longer pass:\n{errors}",
                    errors.0.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `7d` or `36h` as milliseconds.
fn parse_since(s: &str) -> Result<i64> {
    let wrong = || format!("--since {s:?}: a number of days or hours, e.g. 7d or 36h");
    let (n, unit_ms) = if let Some(n) = s.strip_suffix('d') {
        (n, 86_400_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        anyhow::bail!(wrong());
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= 3650)
        .with_context(wrong)?;
    Ok(n * unit_ms)
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `frontdesk replay`.
fn replay(
    since: String,
    dir: PathBuf,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
    thresholds: bool,
) -> Result<ExitCode> {
    use frontdesk::replay::{self, Window};
    let span = parse_since(&since)?;
    let config = load_config(config)?;
    let model = Model::load_at(config.model_dir.as_deref(), config.model_precision)?;
    let edited = match Classifier::load_with(&dir, &model) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    const BUSY: &str = "the server holds it: stop it, replay a backup (`frontdesk store backup DIR --token …`, then --data DIR), or preview in the admin page";
    let store: Arc<dyn Store> = match data {
        Some(data) => {
            if !data.is_dir() {
                anyhow::bail!("{}: no store here", data.display());
            }
            Arc::new(frontdesk::store::SledStore::open(&data).with_context(|| {
                format!(
                    "{}: cannot open the store (is `frontdesk serve` running? {BUSY})",
                    data.display()
                )
            })?)
        }
        None => {
            if let StoreConfig::Sled = config.store {
                let data = &config.server.data_dir;
                if !data.is_dir() {
                    anyhow::bail!("{}: no store here", data.display());
                }
            }
            open_offline(&config, BUSY)?
        }
    };
    let store = &*store;
    let now = frontdesk::util::clock::system_ms();
    let window = Window {
        from_ms: now - span,
        to_ms: now + 1,
        ..Window::last_days(now, 1)
    };
    let rules = conversation::Rules {
        escalation: &config.escalation,
        texts: &config.texts,
    };
    let report = replay::replay(store, &window, &edited, &rules)?;
    let curve = if thresholds {
        let current = Classifier::load_with(&config.server.intents_dir, &model)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(replay::thresholds(
            store,
            &window,
            &current,
            &config.escalation,
            &replay::threshold_grid(),
        )?)
    } else {
        None
    };
    if json {
        let v = serde_json::json!({ "replay": report, "thresholds": curve });
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "replay of {} → {} against {}",
        utc(report.from_ms),
        utc(report.to_ms),
        dir.display()
    );
    out!(
        "{} conversations, {} visitor messages the bot decided replayed ({} sent while a person held the conversation: skipped)",
        report.conversations,
        report.messages,
        report.skipped_with_agent
    );
    out!("{} message(s) would be decided differently", report.changed);
    for c in &report.changes {
        out!("  {:>6}  {}", c.count, c.change);
    }
    let (b, a) = (&report.before, &report.after);
    out!("predicted (each message replayed on the conversation as it was; see README, Replay):");
    out!("                      before     after    change");
    let row = |name: &str, x: usize, y: usize| {
        out!("  {name:<18} {x:>8}  {y:>8}  {:>+8}", y as i64 - x as i64);
    };
    row("answered", b.answered, a.answered);
    row("clarified", b.clarified, a.clarified);
    row("fallbacks", b.fallbacks, a.fallbacks);
    row("offers of a person", b.offers, a.offers);
    row("handoffs", b.handoffs, a.handoffs);
    row("contained convs", b.contained, a.contained);
    out!(
        "  {:<18} {:>7.1}%  {:>7.1}%  {:>+6.1} pts",
        "containment",
        b.containment * 100.0,
        a.containment * 100.0,
        (a.containment - b.containment) * 100.0
    );
    if !report.differences.is_empty() {
        out!("differences:");
    }
    for d in &report.differences {
        out!(
            "  {} #{} {}: {}\n      {} → {}",
            d.conversation,
            d.seq,
            utc(d.at_ms),
            serde_json::to_string(&d.text).unwrap_or_default(),
            d.before.describe(),
            d.after.describe()
        );
    }
    if let Some(c) = curve {
        out!(
            "threshold what-if (current set, answer threshold now {:.2}; bad = rated not helpful or followed by a handoff):",
            c.current
        );
        out!("  threshold  containment  answers  bad  unjudged  bad share");
        for p in &c.points {
            out!(
                "  {:>9.2}  {:>10.1}%  {:>7}  {:>3}  {:>8}  {:>8.1}%",
                p.threshold,
                p.containment * 100.0,
                p.answers,
                p.bad_answers,
                p.unjudged_answers,
                p.bad_share * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The conversation `chat` holds in memory.
struct ChatLog {
    conv: conversation::Conversation,
    seq: u64,
    turns: u64,
}

impl ChatLog {
    fn new(visitor: conversation::Visitor) -> ChatLog {
        let mut log = ChatLog {
            conv: conversation::Conversation::default(),
            seq: 0,
            turns: 0,
        };
        log.append(&[conversation::Event::Started { visitor }]);
        log
    }

    fn append(&mut self, events: &[conversation::Event]) {
        for event in events {
            self.seq += 1;
            self.conv.apply(&conversation::Record {
                seq: self.seq,
                at_ms: 0,
                event: event.clone(),
            });
        }
    }
}

/// What the visitor would see of an event.
fn print_event(e: &conversation::Event) {
    use conversation::Event;
    match e {
        Event::BotReply {
            text,
            quick_replies,
            ..
        }
        | Event::Clarification {
            text,
            quick_replies,
            ..
        } => {
            out!("bot: {text}");
            if !quick_replies.is_empty() {
                out!("     [{}]", quick_replies.join("] ["));
            }
        }
        Event::SlotPrompt { text, .. }
        | Event::Fallback { text, .. }
        | Event::HandoffOffered { text, .. } => out!("bot: {text}"),
        Event::Handoff { reason, .. } => {
            out!("(handed to a person: reason {})", reason.as_str())
        }
        Event::Closed { by } => out!("(closed by {by})"),
        _ => {}
    }
}

/// Opens the configured store (compacting a sled one first if asked),
/// then the bot on it.
fn open_app(
    config: frontdesk::config::Config,
) -> Result<(frontdesk::app::App, frontdesk::app::Started)> {
    use frontdesk::store::SledStore;
    let dir = config.server.data_dir.clone();
    match &config.store {
        StoreConfig::Sled if config.server.compact_on_start && dir.exists() => {
            let (before, after) = SledStore::compact(&dir)
                .map_err(|e| anyhow::anyhow!("{}: compaction: {e}", dir.display()))?;
            tracing::info!(before, after, "store compacted");
        }
        StoreConfig::Postgres(_) if config.server.compact_on_start => {
            tracing::warn!("[server] compact_on_start is for sled; PostgreSQL reclaims space by itself (autovacuum)");
        }
        _ => {}
    }
    // The intents (and the model) need nothing of the store: they load on
    // a thread while the store opens (sled reads its snapshot and the log
    // since), so startup costs the longer of the two, not both.
    let loading = {
        let config = config.clone();
        std::thread::spawn(move || frontdesk::app::App::load(&config))
    };
    let t = std::time::Instant::now();
    let (store, walked) = open_store(&config)?;
    let store_ms = t.elapsed().as_millis() as u64;
    let loaded = loading
        .join()
        .map_err(|_| anyhow::anyhow!("loading the intents failed unexpectedly"))??;
    let load_ms = t.elapsed().as_millis() as u64;
    let built = frontdesk::app::App::with_loaded(
        config,
        store,
        loaded,
        frontdesk::util::clock::Clock::system(),
    )?;
    // From here to the first answer is the listener's part.
    tracing::info!(
        store_ms,
        load_ms,
        ready_ms = t.elapsed().as_millis() as u64,
        walked,
        "store open, intents loaded, queue restored"
    );
    Ok(built)
}
/// Takes back a failed copy into `dir`: empties it if it `existed` (an
/// empty directory, as the copy required), else removes it.
fn undo_copy_into(dir: &Path, existed: bool) {
    if !existed {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// Opens the store `[store]` names: the one place that picks the backend
/// (the server and every command that works on a stopped server's store).
/// A PostgreSQL store is migrated by its open (other nodes may share the
/// database). The log line names the store; a url is
/// printed without its password. `walked`: sled read its whole log.
fn open_store(config: &frontdesk::config::Config) -> Result<(Arc<dyn Store>, bool)> {
    match &config.store {
        StoreConfig::Sled => {
            let dir = &config.server.data_dir;
            let store = frontdesk::store::SledStore::open(dir)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            tracing::info!(backend = "sled", dir = %dir.display(), "store opened");
            let walked = store.walked_on_open();
            Ok((Arc::new(store), walked))
        }
        StoreConfig::Postgres(pg) => {
            let store = PgStore::open(&pg.url.0, pg.pool_size)
                .map_err(|e| anyhow::anyhow!("{}: {e}", pg.shown()))?;
            tracing::info!(
                backend = "postgres",
                url = %pg.shown(),
                pool_size = pg.pool_size,
                "store opened"
            );
            Ok((Arc::new(store), false))
        }
    }
}

/// `open_store` for a command run while the server is stopped: the
/// server holds sled's one-process lock; `busy` says what to do instead.
fn open_offline(config: &frontdesk::config::Config, busy: &str) -> Result<Arc<dyn Store>> {
    open_store(config)
        .map(|(store, _)| store)
        .with_context(|| format!("cannot open the store (is `frontdesk serve` running? {busy})"))
}

/// The sled directory a sled-only command works on: `--data`, else
/// `[server] data_dir`; a PostgreSQL `[store]` is refused, pointing at
/// what does that job there.
fn sled_dir(data: Option<PathBuf>, config: Option<PathBuf>, command: &str) -> Result<PathBuf> {
    if let Some(data) = data {
        return Ok(data);
    }
    let config = load_config(config)?;
    if let StoreConfig::Postgres(pg) = &config.store {
        anyhow::bail!(
            "[store] is PostgreSQL ({}): `{command}` works on a sled directory (--data DIR). PostgreSQL checks and reclaims its own storage; back it up with pg_dump, or copy the shop into a sled directory with `frontdesk store copy --from postgres: --to sled:DIR` (README, \"PostgreSQL\")",
            pg.shown()
        );
    }
    Ok(config.server.data_dir)
}

/// One end of `store copy`: `sled:DIR` or `postgres:URL`.
enum End {
    Sled(PathBuf),
    Postgres(frontdesk::config::Postgres),
}

impl End {
    /// `postgres:` alone takes the url of `[store]` (from the file or
    /// FRONTDESK_STORE__URL), so a password need not be on the command
    /// line.
    fn parse(s: &str, config: &frontdesk::config::Config) -> Result<End> {
        if let Some(dir) = s.strip_prefix("sled:").filter(|d| !d.is_empty()) {
            return Ok(End::Sled(PathBuf::from(dir)));
        }
        let pool_size = match &config.store {
            StoreConfig::Postgres(pg) => pg.pool_size,
            StoreConfig::Sled => frontdesk::config::DEFAULT_POOL_SIZE,
        };
        let url = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s
        } else if let Some(url) = s.strip_prefix("postgres:") {
            url
        } else {
            anyhow::bail!(
                "{s:?}: write sled:DIR or postgres:URL (postgres: alone takes [store] url)"
            );
        };
        if url.is_empty() {
            return match &config.store {
                StoreConfig::Postgres(pg) => Ok(End::Postgres(pg.clone())),
                StoreConfig::Sled => anyhow::bail!(
                    "postgres: without a url takes [store] url (or FRONTDESK_STORE__URL), and [store] backend is not \"postgres\""
                ),
            };
        }
        Ok(End::Postgres(frontdesk::config::Postgres {
            url: frontdesk::config::Secret(url.to_string()),
            pool_size,
        }))
    }

    /// What messages print: a url without its password.
    fn shown(&self) -> String {
        match self {
            End::Sled(dir) => format!("sled:{}", dir.display()),
            End::Postgres(pg) => format!("postgres:{}", pg.shown()),
        }
    }

    /// Opens an existing store to copy from.
    fn open(&self) -> Result<Arc<dyn Store>> {
        const BUSY: &str = "is `frontdesk serve` running on it? stop it first";
        Ok(match self {
            End::Sled(dir) => {
                if !dir.is_dir() {
                    anyhow::bail!("{}: no store here", dir.display());
                }
                Arc::new(frontdesk::store::SledStore::open(dir).with_context(|| {
                    format!("{}: cannot open the store ({BUSY})", dir.display())
                })?)
            }
            End::Postgres(pg) => Arc::new(
                PgStore::open(&pg.url.0, pg.pool_size)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", pg.shown()))
                    .with_context(|| format!("cannot open the store ({BUSY})"))?,
            ),
        })
    }
}

/// `frontdesk store copy`: every entry of the source's export into an
/// empty target, then both counted; any difference fails the command (and
/// a sled target this command made is removed).
fn copy_store(from: &str, to: &str, config: Option<PathBuf>) -> Result<ExitCode> {
    use frontdesk::transfer::{self, Counts};
    let config = load_config(config)?;
    let (from, to) = (End::parse(from, &config)?, End::parse(to, &config)?);
    let start = Instant::now();
    let source = from.open()?;
    let copied = match &to {
        End::Sled(dir) => {
            // Claimed before anything is written: it must not exist or be
            // empty (the writer refuses anything else).
            let existed = dir.exists();
            let mut writer = frontdesk::store::BackupWriter::create(dir)
                .with_context(|| format!("{}: not a place for a copy", to.shown()))?;
            let result = transfer::copy(&*source, &mut |t, k, v| writer.put(t, k, v))
                .and_then(|n| writer.finish().map(|_| n))
                .map_err(anyhow::Error::from)
                .and_then(|n| {
                    let target = frontdesk::store::SledStore::open(dir)?;
                    Ok((n, Counts::of(&target)?))
                });
            if result.is_err() {
                undo_copy_into(dir, existed);
            }
            result?
        }
        End::Postgres(pg) => {
            let target = PgStore::open(&pg.url.0, pg.pool_size)
                .map_err(|e| anyhow::anyhow!("{}: {e}", pg.shown()))?;
            if !transfer::is_empty(&target)? {
                anyhow::bail!(
                    "{}: the database holds a shop already (conversations or agents): a copy goes only into an empty one (create a fresh database)",
                    to.shown()
                );
            }
            let n = transfer::copy(&*source, &mut |t, k, v| target.import(t, k, v))
                .and_then(|n| target.import_done().map(|_| n))
                .with_context(|| {
                    format!("{}: the copy broke off; the database holds part of it: drop and create it again before the next try", to.shown())
                })?;
            (n, Counts::of(&target)?)
        }
    };
    let (entries, there) = copied;
    let here = Counts::of(&*source)?;
    out!(
        "copied {entries} entries from {} to {} in {:.1} s",
        from.shown(),
        to.shown(),
        start.elapsed().as_secs_f64()
    );
    out!("  {:<28} {:>12} {:>12}", "", "source", "target");
    for (what, a, b) in here.rows(&there) {
        let mark = if a == b { "" } else { "  DIFFERS" };
        out!("  {what:<28} {a:>12} {b:>12}{mark}");
    }
    let differences = here.differences(&there);
    if !differences.is_empty() {
        anyhow::bail!(
            "the copy in {} is not whole: {}. Do not use it; keep the source",
            to.shown(),
            differences.join("; ")
        );
    }
    out!("counts agree: {} holds the shop", to.shown());
    Ok(ExitCode::SUCCESS)
}

/// `frontdesk serve`: telemetry, the app, the listener, then run until
/// ctrl-c or SIGTERM.
fn serve(config: frontdesk::config::Config) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRONTDESK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The store outlives the runtime: the sync PostgreSQL client closes
    // its sessions by blocking, which must not happen on a thread of the
    // runtime (where the server's tasks let go of the app); this last
    // reference is let go here, after the runtime and its tasks are gone.
    let store = runtime.block_on(async move {
        let bind = config.server.bind.clone();
        // Listen first: a first start that cannot bind must not make (and
        // lose) the admin's token.
        let listener = frontdesk::http::listen(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let (app, started) = tokio::task::spawn_blocking(move || open_app(config))
            .await??;
        let store = app.store().clone();
        let addr = listener.local_addr()?;
        if let (Some(token), Some(name)) = (&started.first_admin_token, &started.first_admin_name) {
            out!("No admin existed, so one was made: name `{name}`, token (shown once, only a hash is kept):\n{token}");
        }
        out!("frontdesk listening on http://{addr}");
        // Where a person goes next; the admin's token logs in to all three.
        out!(
            "  demo page and widget: http://{addr}/\n  agent console: http://{addr}/agent (an agent's token)\n  admin page: http://{addr}/admin (an admin's token; add agents there)"
        );
        tracing::info!(%addr, "listening");
        frontdesk::http::run(listener, app, shutdown_signal()).await;
        tracing::info!("stopped");
        anyhow::Ok(store)
    })?;
    drop(runtime);
    drop(store);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The semantic model named by `--model`, if any.
fn load_model(args: ModelArgs) -> Result<Model> {
    let model = Model::load_at(args.model.as_deref(), args.precision)?;
    if let (Some(dir), Some(p)) = (&args.model, model.precision()) {
        let kernel = model.kernel().map(|k| format!(" ({k} kernel)"));
        eprintln!(
            "semantic layer: {} in {p}{}",
            dir.display(),
            kernel.unwrap_or_default()
        );
    }
    Ok(model)
}

/// An admin GET on a running server: each piece of a successful body goes
/// to `sink` as it arrives (a backup streams gigabytes); an error status
/// is an error with the server's answer.
fn admin_get(
    url: &str,
    path: &str,
    token: &str,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<Bytes>>();
        let uri = format!("{}{path}", url.trim_end_matches('/'));
        let req = hyper::Request::get(&uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::new())?;
        let res = client
            .request(req)
            .await
            .with_context(|| format!("cannot reach the server at {url}"))?;
        let status = res.status();
        let mut body = res.into_body();
        if !status.is_success() {
            let text = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            anyhow::bail!(
                "{uri} answered {status}: {}",
                String::from_utf8_lossy(&text)
            );
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.with_context(|| format!("the answer from {uri} broke off"))?;
            if let Some(data) = frame.data_ref() {
                sink(data)?;
            }
        }
        Ok(())
    })
}

/// The whole body of an admin GET on a running server.
fn get_online(url: &str, path: &str, token: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    admin_get(url, path, token, |piece| {
        body.extend_from_slice(piece);
        Ok(())
    })?;
    Ok(body)
}

/// Streams `GET /api/v1/admin/backup` from a running server into `dir`.
fn backup_online(
    url: &str,
    token: &str,
    mut writer: frontdesk::store::BackupWriter,
) -> Result<frontdesk::store::BackupReport> {
    admin_get(url, "/api/v1/admin/backup", token, |piece| {
        Ok(writer.feed(piece)?)
    })?;
    Ok(writer.finish_stream()?)
}

fn load_config(path: Option<PathBuf>) -> Result<frontdesk::config::Config> {
    let path = path.or_else(|| {
        let default = PathBuf::from("frontdesk.toml");
        default.exists().then_some(default)
    });
    Ok(frontdesk::config::Config::load(
        path.as_deref(),
        std::env::vars(),
    )?)
}

fn warn_unknown_labels(set: &intents::IntentSet, rows: &[eval::Row]) {
    let unknown = eval::unknown_labels(set, rows);
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|(l, n)| format!("{l} ({n})")).collect();
        eprintln!(
            "warning: {} row(s) carry labels that are no intent of this set and can never be predicted: {}",
            unknown.iter().map(|(_, n)| n).sum::<usize>(),
            list.join(", ")
        );
    }
}

fn warn_stale(set: &intents::IntentSet) {
    if set.calibration_stale {
        eprintln!(
            "warning: {}: thresholds were measured on other intent files; run `frontdesk calibrate` again",
            set.dir.join(intents::CALIBRATION_FILE).display()
        );
    }
}

fn print_summary(s: &eval::Summary, load_ms: f64) {
    out!("rows              {}", s.rows);
    out!("accuracy          {:.4}", s.accuracy);
    out!("macro-F1          {:.4}", s.macro_f1);
    out!("in-scope accuracy {:.4}", s.inscope_accuracy);
    if let (Some(p), Some(r)) = (s.oos_precision, s.oos_recall) {
        out!("OOS precision     {p:.4}");
        out!("OOS recall        {r:.4}");
    }
    let d: Vec<String> = s
        .decisions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out!("decisions         {}", d.join(", "));
    out!(
        "latency           p50 {} µs, p99 {} µs (load {:.0} ms)",
        s.latency_p50_us,
        s.latency_p99_us,
        load_ms
    );
    if !s.confused.is_empty() {
        out!("most confused (gold → predicted):");
        for (g, p, n) in &s.confused {
            out!("  {n:>4}  {g} → {p}");
        }
    }
}
