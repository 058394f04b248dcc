//! Telegram front-end benchmarks (a bench binary): `cargo bench --bench telegram`.
//!
//! One function per measurement, each printing its own section:
//! - `plan`: `plan_answer` on a ~100 KB answer (paragraphs, code blocks with `<` and `&`,
//!   a table, lists): median and p99, and the messages it makes;
//! - `render`: `render` of the same answer into all its messages (every cut, every chunk
//!   written), median and p99;
//! - `ack`: what a user feels of the dispatcher — a Telegram update posted to
//!   `/invocations` (as the relay does) until its `200`, and until the chat shows a sign
//!   of life (the first `sendMessageDraft` — "Thinking…" and Stop — the Telegram fake
//!   records), p50 and p99;
//! - `calls`: Bot API calls per task while it works — a scripted task that talks and
//!   calls a tool every 100 ms for 10 s, in a private chat (drafts) and in a group
//!   (a progress message), against the goal of at most one call per second of task time
//!   plus the final messages.
//!
//! `BENCH_QUICK=1` runs fewer iterations. A word after `--` runs only the sections whose
//! name contains it (e.g. `cargo bench --bench telegram -- plan`).

mod common;

use common::{ms, percentile, us};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::agent::launch::Launcher;
use agent_host::agent::{Answer, Job, JobRunner, ProgressEvent};
use agent_host::server::{AppState, ServerSettings, TaskRegistry};
use agent_host::session::Users;
use agent_host::telegram::render::{plan_answer, render};
use agent_host::telegram::{Bot, BotApi, BotSettings, Store};
use agent_host_tests::fake_telegram::FakeTelegram;
use futures_util::future::BoxFuture;
use serde_json::json;

fn main() {
    let iterations = if std::env::var_os("BENCH_QUICK").is_some() {
        20
    } else {
        300
    };
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let wanted = |section: &str| section.contains(filter.as_str());
    let answer = long_answer(100 * 1024);
    if wanted("plan") {
        plan_long_answer(&answer, iterations);
    }
    if wanted("render") {
        render_long_answer(&answer, iterations);
    }
    if wanted("ack") {
        ack_and_first_draft(iterations);
    }
    if wanted("calls") {
        api_calls_per_task();
    }
}

/// `plan_answer` on the long answer: what answering a user costs before the first send.
fn plan_long_answer(answer: &str, iterations: usize) {
    println!("## plan_answer on a {} KB answer", answer.len() / 1024);
    let samples = sample(iterations, || {
        std::hint::black_box(plan_answer(std::hint::black_box(answer)));
    });
    let plan = plan_answer(answer);
    println!(
        "median {}  p99 {}  ({iterations} runs)",
        us(percentile(&samples, 50.0)),
        us(percentile(&samples, 99.0))
    );
    println!(
        "{} message(s) of {} UTF-16 units at most, answer.md attached: {}",
        plan.messages.len(),
        plan.messages
            .iter()
            .map(|m| m.plain.encode_utf16().count())
            .max()
            .unwrap_or(0),
        plan.document.is_some()
    );
}

/// `render` of the long answer into every message it would take.
fn render_long_answer(answer: &str, iterations: usize) {
    println!(
        "\n## render (all messages) of a {} KB answer",
        answer.len() / 1024
    );
    let samples = sample(iterations, || {
        std::hint::black_box(render(std::hint::black_box(answer)));
    });
    println!(
        "median {}  p99 {}  ({iterations} runs), {} messages",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        render(answer).len()
    );
}

/// The bot's token in the benches (the fake accepts only it).
const TOKEN: &str = "4242:BENCH-token";
/// Users the updates rotate over, so each prompt finds its user idle.
const USERS: i64 = 16;

/// A runner whose tasks end at once: what is measured is the front end, not the agent.
struct Instantly;

impl JobRunner for Instantly {
    fn run(&self, _job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        Box::pin(async {
            Ok(Answer {
                text: "done".into(),
                usage: Default::default(),
            })
        })
    }
}

/// What a user feels: the relay's `POST /invocations` with a Telegram update until its
/// `200` (the relay, and behind it Telegram, wait that long), and the update until the
/// chat shows a sign of life (the first `sendMessageDraft` the Telegram fake records),
/// each update 100 ms after the last task's answer.
fn ack_and_first_draft(iterations: usize) {
    println!("\n## a Telegram update on /invocations: the ack, and the first draft");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (acks, first_draft) = runtime.block_on(async {
        let fake = FakeTelegram::start(TOKEN).await;
        let root = tempfile::tempdir().unwrap();
        let users = Arc::new(Users::new(
            root.path().join("workspaces"),
            (0..USERS).map(|user| (1000 + user).to_string()),
        ));
        let launcher = Arc::new(Launcher::new(Arc::new(Instantly), TaskRegistry::new()));
        let bot = Bot::new(
            BotApi::new(&fake.base_url(), TOKEN).unwrap(),
            Store::open(&root.path().join("telegram")).unwrap(),
            users.clone(),
            launcher.clone(),
            BotSettings {
                send_interval: Duration::ZERO,
                ..BotSettings::default()
            },
        );
        let state = AppState::with_launcher(users, launcher, ServerSettings::default())
            .with_bot(Arc::new(bot));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/invocations", listener.local_addr().unwrap());
        tokio::spawn(agent_host::server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        let client = reqwest::Client::new();
        let (mut acks, mut first_draft) = (Vec::new(), Vec::new());
        for i in 0..iterations + 1 {
            let user = 1000 + (i as i64 % USERS);
            let mut update = FakeTelegram::private_message(user, "hello");
            update["update_id"] = json!(i + 1);
            let sent = Instant::now();
            let response = client.post(&url).json(&update).send().await.unwrap();
            let ack = sent.elapsed();
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["status"], "accepted", "{body}");
            let shown = fake
                .wait_until(
                    |calls| {
                        calls
                            .iter()
                            .filter(|c| c.method == "sendMessageDraft")
                            .count()
                            > i
                    },
                    Duration::from_secs(10),
                )
                .await;
            assert!(shown, "no draft for update {}", i + 1);
            let at = fake.calls_to("sendMessageDraft")[i].at;
            // Let the task's answer go out before the next update.
            let answered = fake
                .wait_until(
                    |calls| calls.iter().filter(|c| c.method == "sendMessage").count() > i,
                    Duration::from_secs(10),
                )
                .await;
            assert!(answered);
            // Each update finds the bot idle, as a user's usually does: back to back, the
            // bot-wide pacing (~30 sends a second) would be what is measured.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if i > 0 {
                acks.push(ack);
                first_draft.push(at.duration_since(sent));
            }
        }
        (acks, first_draft)
    });
    println!(
        "ack: p50 {}  p99 {}  ({iterations} updates, each writes the handled update id to disk)",
        us(percentile(&acks, 50.0)),
        us(percentile(&acks, 99.0))
    );
    println!(
        "update → first sendMessageDraft: p50 {}  p99 {}",
        us(percentile(&first_draft, 50.0)),
        us(percentile(&first_draft, 99.0))
    );
}

/// The time of each of `iterations` runs of `run`, after one warm-up run.
fn sample(iterations: usize, mut run: impl FnMut()) -> Vec<Duration> {
    run();
    (0..iterations)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect()
}

/// A model-like answer of at least `bytes` bytes: sections with a heading, prose with
/// inline code, links and emphasis, a list, a code block with `<` and `&`, and a table.
fn long_answer(bytes: usize) -> String {
    let mut answer = String::from("# What I changed\n\n");
    let mut section = 0;
    while answer.len() < bytes {
        section += 1;
        answer.push_str(&format!(
            "## Step {section}: the parser\n\n\
             The function `parse_line` read past the end when a line held only `<` or `&`; \
             it now **stops at the last byte** and returns *None* (see \
             [the docs](https://docs.rs/pulldown-cmark/0.13.0/pulldown_cmark/?a=1&b=2)).\n\
             This keeps the old behaviour for every well-formed line, and ~~panics~~ errors \
             are reported with the line number.\n\n\
             - `src/parse.rs`: the bounds check\n\
             - `src/lib.rs`: the new error variant\n  \
               - with its `Display` text\n\
             1. run `cargo test`\n\
             2. run `cargo clippy -- -D warnings`\n\n\
             ```rust\n\
             fn parse_line(line: &str) -> Option<Token<'_>> {{\n    \
                 if line.len() < 2 && (line == \"<\" || line == \"&\") {{\n        \
                     return None;\n    \
                 }}\n    \
                 let (head, tail) = line.split_at(line.find('<').unwrap_or(line.len()));\n    \
                 Some(Token {{ head, tail, step: {section} }})\n\
             }}\n\
             ```\n\n\
             | Case | Before | After |\n\
             |------|-------:|:-----:|\n\
             | `<` alone | panic | None |\n\
             | `a & b` | ok | ok |\n\
             | empty line {section} | ok | ok |\n\n\
             > Note: the fix is covered by `parse_line_stops_at_the_end`.\n\n"
        ));
    }
    answer
}

/// How long the scripted task of `calls` works.
const BUSY_TASK: Duration = Duration::from_secs(10);

/// A task that talks and calls a tool every 100 ms for [`BUSY_TASK`]: a busy agent.
struct Busy;

impl JobRunner for Busy {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut step = 0;
            while started.elapsed() < BUSY_TASK {
                step += 1;
                job.progress.send(ProgressEvent::Text {
                    text: format!("Looking at part {step}. "),
                });
                let input = json!({"command": format!("cargo test part{step}")}).to_string();
                job.progress.send(ProgressEvent::ToolStarted {
                    tool: "Bash".into(),
                    input,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
                job.progress.send(ProgressEvent::ToolFinished {
                    tool: "Bash".into(),
                    is_error: false,
                    output: "test result: ok".into(),
                });
            }
            Ok(Answer {
                text: "All parts pass.".into(),
                usage: Default::default(),
            })
        })
    }
}

/// Bot API calls made for one busy task, by method, in a private chat and in a group.
fn api_calls_per_task() {
    println!(
        "\n## Bot API calls per task: a {} s task with a step every 100 ms",
        BUSY_TASK.as_secs()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (chat, update) in [
            (
                "private chat (draft)",
                FakeTelegram::private_message(1000, "go"),
            ),
            (
                "group (progress message)",
                FakeTelegram::group_message(-100, 1000, "@fake_agent_bot go"),
            ),
        ] {
            let fake = FakeTelegram::start(TOKEN).await;
            let root = tempfile::tempdir().unwrap();
            let users = Arc::new(Users::new(root.path().join("ws"), ["1000".to_string()]));
            let launcher = Arc::new(Launcher::new(Arc::new(Busy), TaskRegistry::new()));
            let bot = Arc::new(Bot::new(
                BotApi::new(&fake.base_url(), TOKEN).unwrap(),
                Store::open(&root.path().join("telegram")).unwrap(),
                users,
                launcher.clone(),
                BotSettings {
                    groups: true,
                    ..BotSettings::default()
                },
            ));
            let started = Instant::now();
            let mut update = update;
            update["update_id"] = json!(1);
            bot.handle_update(update).await;
            launcher.shutdown(Duration::from_secs(60)).await;
            let elapsed = started.elapsed();
            let calls = fake.calls();
            let count = |method: &str| calls.iter().filter(|c| c.method == method).count();
            // getMe is asked once per bot (to know its @name in groups), not per task.
            let total = calls.iter().filter(|c| c.method != "getMe").count();
            println!(
                "{chat}: {total} calls in {:.1} s — sendMessageDraft {}, editMessageText {}, \
                 sendMessage {}, sendChatAction {}; {:.2} calls per task second besides the \
                 final message (goal: at most 1)",
                elapsed.as_secs_f64(),
                count("sendMessageDraft"),
                count("editMessageText"),
                count("sendMessage"),
                count("sendChatAction"),
                (total - 1) as f64 / elapsed.as_secs_f64(),
            );
        }
    });
}
