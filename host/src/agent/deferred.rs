//! An agent still being built: the server answers `/ping` at once while the model and
//! history clients are set up, and the first task waits for them.

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

use super::{Agent, Answer, Job, JobRunner};

/// A [`JobRunner`] over an agent that is still being built: tasks wait for it, or fail
/// with why it could not be built.
pub struct DeferredAgent(Shared<BoxFuture<'static, Result<Agent, String>>>);

impl DeferredAgent {
    /// Starts building the agent with `build` on the current runtime, logging a failure
    /// at once (not only when a task arrives).
    pub fn start(build: impl Future<Output = anyhow::Result<Agent>> + Send + 'static) -> Self {
        let agent = async move { build.await.map_err(|error| format!("{error:#}")) }
            .boxed()
            .shared();
        let building = agent.clone();
        tokio::spawn(async move {
            if let Err(error) = building.await {
                tracing::error!("the agent could not be started: {error}");
            }
        });
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
