//! A scripted job runner for server tests (never shipped): each prompt line is a step —
//! `sleep <ms>`, `write <file> <text…>` (through the real `Write` tool component),
//! `panic`, `fail <message…>`; any other line is echoed as progress text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_host::agent::{Answer, Job, JobRunner, ProgressEvent};
use agent_host::model::Usage;
use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, PluginSet};
use futures_util::future::BoxFuture;
use serde_json::json;

/// Runs prompt scripts with the given plugins.
pub struct ScriptRunner {
    plugins: Arc<PluginSet>,
}

impl ScriptRunner {
    /// A runner calling tools from `plugins`.
    pub fn new(plugins: Arc<PluginSet>) -> Self {
        Self { plugins }
    }
}

impl JobRunner for ScriptRunner {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        let plugins = self.plugins.clone();
        Box::pin(async move {
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = {
                let (stop, cancel) = (stop.clone(), job.cancel.clone());
                tokio::spawn(async move {
                    cancel.cancelled().await;
                    stop.store(true, Ordering::Relaxed);
                })
            };
            let context =
                CallContext::new(job.workspace.clone(), Arc::new(SessionState::in_memory()))
                    .with_cancel(stop);
            let mut steps = 0;
            for line in job.prompt.lines() {
                steps += 1;
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["sleep", ms] => {
                        let ms: u64 = ms.parse()?;
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                            () = job.cancel.cancelled() => anyhow::bail!("cancelled while sleeping"),
                        }
                    }
                    ["write", file, text @ ..] => {
                        if job.cancel.is_cancelled() {
                            anyhow::bail!("cancelled before writing {file}");
                        }
                        let input = json!({
                            "file_path": job.workspace.join(file).display().to_string(),
                            "content": text.join(" "),
                        })
                        .to_string();
                        job.progress.send(ProgressEvent::ToolStarted {
                            tool: "Write".into(),
                            input: input.clone(),
                        });
                        let outcome = plugins.call_tool("Write", &input, &context).await.outcome;
                        job.progress.send(ProgressEvent::ToolFinished {
                            tool: "Write".into(),
                            is_error: outcome.is_error(),
                        });
                        if outcome.is_error() {
                            anyhow::bail!("Write failed: {}", outcome.text());
                        }
                    }
                    ["panic"] => panic!("scripted panic"),
                    ["fail", message @ ..] => anyhow::bail!("{}", message.join(" ")),
                    _ => job.progress.send(ProgressEvent::Text {
                        text: line.to_string(),
                    }),
                }
            }
            watcher.abort();
            Ok(Answer {
                text: format!("done: {steps} steps"),
                // The scripted runner asks no model: each step counts as one request.
                usage: Usage {
                    requests: steps,
                    ..Usage::default()
                },
            })
        })
    }
}
