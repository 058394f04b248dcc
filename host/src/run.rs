//! `agent-host run`: one task in a local folder, from the terminal. Tool calls are shown
//! on stderr as they happen, the final answer is printed on stdout, Ctrl-C stops the task.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::agent::{Job, JobRunner, Progress, ProgressEvent};

/// Runs `prompt` in `workspace` as `user_key` on `runner`, printing as it goes; exit code
/// 0 when the task answered, 1 when it failed.
pub async fn run_task(
    runner: &dyn JobRunner,
    workspace: PathBuf,
    user_key: String,
    prompt: String,
) -> ExitCode {
    let (progress, mut events) = Progress::channel(1024);
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("[interrupted: stopping the task]");
            on_interrupt.cancel();
        }
    });
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                ProgressEvent::ToolStarted { tool, input } => {
                    eprintln!("[{tool}] {}", summarize(&input, 160));
                }
                ProgressEvent::ToolFinished {
                    tool,
                    is_error: true,
                    output,
                } => eprintln!(
                    "[{tool}] failed: {}",
                    output.lines().next().unwrap_or_default()
                ),
                _ => {}
            }
        }
    });
    let job = Job {
        task_id: "cli".to_string(),
        user_key,
        session_id: None,
        prompt,
        images: Vec::new(),
        workspace,
        cancel,
        progress,
    };
    let result = runner.run(job).await;
    let _ = printer.await;
    match result {
        Ok(answer) => {
            println!("{}", answer.text);
            let usage = answer.usage;
            eprintln!(
                "[usage] {} input tokens, {} output tokens, {} read from the cache, {} written \
                 to it, {} requests",
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.requests
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: the task failed: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// `text` on one line, cut to `max` characters.
fn summarize(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= max {
        line
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_one_cut_line() {
        assert_eq!(summarize("a\nb", 10), "a b");
        assert_eq!(summarize("abcdef", 3), "abc…");
    }
}
