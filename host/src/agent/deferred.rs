//! An agent built at the first task: `serve` answers `/ping` at once, and the model and
//! history clients are set up when the first request needs them.
//!
//! Not before: AgentCore may snapshot the process after start and restore that snapshot
//! for every session (Platform V2). Whatever is made before the first request is shared
//! by all the restored copies, and the AWS clients would resolve the region and build
//! their retry state there, some of it over the network. Built at the first task, each
//! copy makes its own.

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

use super::{Agent, Answer, Job, JobRunner};

/// A [`JobRunner`] over an agent that is built when the first job (or `forget`) needs it:
/// tasks wait for it, or fail with why it could not be built.
pub struct DeferredAgent(Shared<BoxFuture<'static, Result<Agent, String>>>);

impl DeferredAgent {
    /// An agent that `build` makes at its first use; nothing runs before that.
    pub fn start(build: impl Future<Output = anyhow::Result<Agent>> + Send + 'static) -> Self {
        let agent = async move {
            build.await.map_err(|error| {
                let error = format!("{error:#}");
                tracing::error!("the agent could not be started: {error}");
                error
            })
        }
        .boxed()
        .shared();
        Self(agent)
    }
}

impl DeferredAgent {
    /// The agent once built, or why it could not be.
    fn ready(&self) -> impl Future<Output = anyhow::Result<Agent>> + use<> {
        let agent = self.0.clone();
        async move {
            agent
                .await
                .map_err(|error| anyhow::anyhow!("the agent could not be started: {error}"))
        }
    }
}

impl JobRunner for DeferredAgent {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        let agent = self.ready();
        async move { agent.await?.run(job).await }.boxed()
    }

    fn forget(&self, user_key: &str) -> BoxFuture<'static, anyhow::Result<()>> {
        let (agent, user_key) = (self.ready(), user_key.to_string());
        async move { agent.await?.forget(&user_key).await }.boxed()
    }
}
