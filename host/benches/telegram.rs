//! Telegram front-end benchmarks (a bench binary): `cargo bench --bench telegram`.
//!
//! One function per measurement, each printing its own section:
//! - `plan`: `plan_answer` on a ~100 KB answer (paragraphs, code blocks with `<` and `&`,
//!   a table, lists): median and p99, and the messages it makes;
//! - `render`: `render` of the same answer into all its messages (every cut, every chunk
//!   written), median and p99.
//!
//! `BENCH_QUICK=1` runs fewer iterations. A word after `--` runs only the sections whose
//! name contains it (e.g. `cargo bench --bench telegram -- plan`).

mod common;

use common::{ms, percentile, us};
use std::time::{Duration, Instant};

use agent_host::telegram::render::{plan_answer, render};

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
