//! A scripted job runner for server tests (never shipped): each prompt line is a step —
//! `wait <gate>` (holds the task at the named [`Gate`] until the test opens it or the task
//! is cancelled), `write <file> <text…>` (through the real `Write` tool component),
//! `panic`, `fail <message…>`, `answer <name>` (the task's answer is the text the test
//! registered under that name with [`ScriptRunner::set_answer`]); any other line is
//! echoed as progress text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use agent_host::agent::{Answer, Job, JobRunner, ProgressEvent};
use agent_host::model::Usage;
use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, PluginSet};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::Gate;

/// Runs prompt scripts with the given plugins.
pub struct ScriptRunner {
    plugins: Arc<PluginSet>,
    gates: Gates,
    answers: Arc<Mutex<HashMap<String, String>>>,
}

/// The named gates of one runner, made on first mention (by the test or by a script).
#[derive(Clone, Default)]
struct Gates(Arc<Mutex<HashMap<String, Gate>>>);

impl Gates {
    fn get(&self, name: &str) -> Gate {
        let mut gates = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        gates.entry(name.to_string()).or_default().clone()
    }
}

impl ScriptRunner {
    /// A runner calling tools from `plugins`.
    pub fn new(plugins: Arc<PluginSet>) -> Self {
        Self {
            plugins,
            gates: Gates::default(),
            answers: Arc::default(),
        }
    }

    /// Registers `text` as the answer of tasks whose script says `answer <name>`.
    pub fn set_answer(&self, name: &str, text: &str) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.insert(name.to_string(), text.to_string());
    }

    /// The gate that `wait <name>` steps of this runner's scripts wait at: the test opens
    /// it to let them on, or waits until a script [`reached`](Gate::reached) it. Scripts
    /// of every task share it, and it stays open once opened.
    pub fn gate(&self, name: &str) -> Gate {
        self.gates.get(name)
    }
}

impl JobRunner for ScriptRunner {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        let plugins = self.plugins.clone();
        let gates = self.gates.clone();
        let answers = self.answers.clone();
        Box::pin(async move {
            let mut answer = None;
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
                    ["wait", name] => {
                        let gate = gates.get(name);
                        // Process tests (`test-server`) see this in the log.
                        tracing::info!(gate = %name, "script waits at a gate");
                        tokio::select! {
                            () = gate.pass() => {}
                            () = job.cancel.cancelled() => {
                                anyhow::bail!("cancelled while waiting at gate {name}")
                            }
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
                            output: agent_host::agent::job::preview(outcome.text()),
                        });
                        if outcome.is_error() {
                            anyhow::bail!("Write failed: {}", outcome.text());
                        }
                    }
                    ["answer", name] => {
                        let answers = answers.lock().unwrap_or_else(PoisonError::into_inner);
                        answer = Some(answers.get(*name).cloned().unwrap_or_else(|| {
                            panic!("the test registered no answer named {name}")
                        }));
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
                text: answer.unwrap_or_else(|| format!("done: {steps} steps")),
                // The scripted runner asks no model: each step counts as one request.
                usage: Usage {
                    requests: steps,
                    ..Usage::default()
                },
            })
        })
    }
}
