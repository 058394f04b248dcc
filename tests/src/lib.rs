//! Shared fixtures for the end-to-end tests: the real built-in plugin components, loaded
//! once per test binary, and a fresh temporary workspace and session per test; fakes
//! (Bedrock, the Telegram Bot API, AgentCore's data plane, Secrets Manager, a scripted job
//! runner) and the means to drive them
//! without waiting on the clock ([`Gate`], [`ManualClock`]).

mod clock;
pub mod fake_agentcore;
pub mod fake_bedrock;
pub mod fake_lambda;
pub mod fake_secrets;
pub mod fake_telegram;
mod gate;
pub mod relay;
mod runner;

pub use clock::ManualClock;
pub use gate::{Gate, REACH_LIMIT};
pub use runner::ScriptRunner;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, PluginRuntime, PluginSet, ToolOutcome};
use serde_json::Value;

/// Says a test cannot check what it is for on this machine (a kernel mechanism is
/// missing). Under CI (`CI` set) that is a failure, never a silent pass: CI machines must
/// offer everything the promises rely on.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason}\n(CI is set, so this test may not be skipped)");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Where the compiled-component cache of the test suite lives (shared by all tests so
/// each component is compiled once per run).
pub fn test_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache")
}

/// The plugin runtime shared by every test of this binary.
pub fn runtime() -> &'static Arc<PluginRuntime> {
    static RUNTIME: OnceLock<Arc<PluginRuntime>> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Arc::new(PluginRuntime::new(Some(test_cache_dir())).expect("plugin runtime starts"))
    })
}

/// The built-in plugins (files, search, ...) as the host ships them, loaded once.
pub fn builtin_plugins() -> &'static Arc<PluginSet> {
    static PLUGINS: OnceLock<Arc<PluginSet>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let dir = agent_host::plugins::builtin_plugins_dir()
            .expect("the build script built the built-in plugins");
        Arc::new(
            PluginSet::load_dir(runtime(), &dir, &Default::default())
                .expect("built-in plugins load"),
        )
    })
}

/// The directory holding the test-only components (hostile, policy-example, ...).
pub fn testing_plugins_dir() -> PathBuf {
    PathBuf::from(agent_host::plugins::TESTING_PLUGINS_DIR)
}

/// A tool result as the model would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Result {
    /// The text of the result.
    pub text: String,
    /// True when the result is marked as an error.
    pub is_error: bool,
}

/// A fresh workspace and session with the built-in plugins.
pub struct Fixture {
    workspace: tempfile::TempDir,
    /// The canonical workspace path (what the tools see and print).
    root: PathBuf,
    session: Arc<SessionState>,
    plugins: Arc<PluginSet>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// A new empty workspace with the built-in plugins and an empty session.
    pub fn new() -> Self {
        Self::with_plugins(builtin_plugins().clone())
    }

    /// A new empty workspace served by `plugins`.
    pub fn with_plugins(plugins: Arc<PluginSet>) -> Self {
        let workspace = tempfile::tempdir().expect("temp workspace");
        let root = workspace
            .path()
            .canonicalize()
            .expect("canonical workspace");
        Self {
            workspace,
            root,
            session: Arc::new(SessionState::in_memory()),
            plugins,
        }
    }

    /// The workspace root (canonical, absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` under the workspace root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `rel` under the workspace root, as a string for tool inputs.
    pub fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Writes a file under the workspace (creating parents) without going through a tool.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parents");
        }
        std::fs::write(&path, contents).expect("write fixture file");
        path
    }

    /// Reads a workspace file's bytes.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read fixture file")
    }

    /// The plugins serving this workspace.
    pub fn plugins(&self) -> &Arc<PluginSet> {
        &self.plugins
    }

    /// The guidance of the loaded policy `name` (what the system prompt gets from it).
    pub fn guidance(&self, name: &str) -> String {
        let policy = self
            .plugins
            .policies()
            .iter()
            .find(|policy| policy.identity().name == name)
            .unwrap_or_else(|| panic!("policy {name} is loaded"));
        policy.guidance(&self.context())
    }

    /// A call context for this workspace and session.
    pub fn context(&self) -> CallContext {
        CallContext::new(self.root.clone(), self.session.clone())
    }

    /// Calls `tool` through the policy chain and returns everything that happened (each
    /// policy's decision, whether the tool ran).
    pub fn checked(&self, tool: &str, input: Value) -> agent_host::plugins::CheckedCall {
        self.plugins.call(tool, &input.to_string(), &self.context())
    }

    /// Calls `tool` with `input` as the agent would (through the policy chain).
    pub fn call(&self, tool: &str, input: Value) -> Result {
        let context = self.context();
        match self
            .plugins
            .call(tool, &input.to_string(), &context)
            .outcome
        {
            ToolOutcome::Success(text) => Result {
                text,
                is_error: false,
            },
            ToolOutcome::Error(text) => Result {
                text,
                is_error: true,
            },
        }
    }

    /// Calls `tool` and expects a success result; returns its text.
    #[track_caller]
    pub fn ok(&self, tool: &str, input: Value) -> String {
        let result = self.call(tool, input.clone());
        assert!(!result.is_error, "{tool} {input} failed:\n{}", result.text);
        result.text
    }

    /// Calls `tool` and expects an error result; returns its text.
    #[track_caller]
    pub fn err(&self, tool: &str, input: Value) -> String {
        let result = self.call(tool, input.clone());
        assert!(
            result.is_error,
            "{tool} {input} should have failed, got:\n{}",
            result.text
        );
        result.text
    }

    /// Keeps the temporary directory alive (and tells the compiler it is used).
    pub fn temp_dir(&self) -> &Path {
        self.workspace.path()
    }
}

/// The hostile test tools alone, with no policy in front of them: what they reach is
/// exactly what the sandbox lets through.
pub fn hostile_plugins() -> &'static Arc<PluginSet> {
    static PLUGINS: OnceLock<Arc<PluginSet>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let mut settings = agent_host::plugins::PluginSettings::default();
        settings.by_name.insert(
            "policy-example".into(),
            agent_host::plugins::PluginGrant {
                enabled: false,
                ..Default::default()
            },
        );
        Arc::new(
            PluginSet::load_dir(runtime(), &testing_plugins_dir(), &settings)
                .expect("hostile plugins load"),
        )
    })
}

/// The test-only components (hostile tools, the example policy), loaded once.
pub fn testing_plugins() -> &'static Arc<PluginSet> {
    static PLUGINS: OnceLock<Arc<PluginSet>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        Arc::new(
            PluginSet::load_dir(runtime(), &testing_plugins_dir(), &Default::default())
                .expect("testing plugins load"),
        )
    })
}

/// A directory holding copies of chosen components with manifests written by the test,
/// to load plugins in configurations the shipped manifests do not have.
pub struct PluginDir {
    dir: tempfile::TempDir,
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginDir {
    /// An empty plugin directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp plugin dir"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds component `source` (a path to a `.wasm`) as `<name>.wasm` with `manifest`
    /// as `<name>.toml`; returns the component's new path.
    pub fn add(&self, name: &str, source: &Path, manifest: &str) -> PathBuf {
        let wasm = self.dir.path().join(format!("{name}.wasm"));
        std::fs::copy(source, &wasm).expect("copy component");
        std::fs::write(self.dir.path().join(format!("{name}.toml")), manifest)
            .expect("write manifest");
        wasm
    }

    /// Loads the directory with default operator settings.
    pub fn load(&self) -> anyhow::Result<PluginSet> {
        self.load_with(&Default::default())
    }

    /// Loads the directory with the operator's `settings` (`[plugins.<name>]` tables).
    pub fn load_with(
        &self,
        settings: &agent_host::plugins::PluginSettings,
    ) -> anyhow::Result<PluginSet> {
        PluginSet::load_dir(runtime(), self.path(), settings)
    }

    /// Adds the built-in plugin `name` with its shipped manifest.
    pub fn add_builtin(&self, name: &str) -> PathBuf {
        let wasm = builtin_component(name);
        let manifest = std::fs::read_to_string(wasm.with_extension("toml"))
            .expect("built-in manifest next to its component");
        self.add(name, &wasm, &manifest)
    }
}

/// The path of a built test-only component, e.g. `testing_component("hostile")`.
pub fn testing_component(name: &str) -> PathBuf {
    testing_plugins_dir().join(format!("{name}.wasm"))
}

/// The path of a built built-in component, e.g. `builtin_component("files")`.
pub fn builtin_component(name: &str) -> PathBuf {
    agent_host::plugins::builtin_plugins_dir()
        .expect("built-in plugins built")
        .join(format!("{name}.wasm"))
}

/// A name no other process has, for a command to give the processes it leaves behind
/// (`exec -a NAME`): the command's pids are those of its own PID namespace, so the test
/// finds them from outside by name.
pub fn unique_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "agent-host-test-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Whether a live process (not a zombie awaiting its reaper) has `name` in its command
/// line.
pub fn is_running(name: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .any(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            String::from_utf8_lossy(&cmdline).contains(name)
                && !state.starts_with('Z')
                && !state.starts_with('X')
        })
}

/// Whether every process whose command line holds `name` is gone (or a zombie awaiting
/// its reaper), polling for up to 10 s: killed processes take a moment to be reaped.
pub fn all_gone(name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !is_running(name) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The production Bedrock client for `model_id`, configured as an operator would through
/// the AWS chain but with the values in code (tests never touch the process environment
/// or the network), pointed at `fake`.
pub fn bedrock_model(
    fake: &fake_bedrock::FakeBedrock,
    model_id: &str,
    streaming: bool,
) -> agent_host::model::BedrockModel {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(fake.endpoint())
        .credentials_provider(
            aws_sdk_bedrockruntime::config::SharedCredentialsProvider::new(
                aws_sdk_bedrockruntime::config::Credentials::new(
                    "test", "test", None, None, "test",
                ),
            ),
        )
        .build();
    let mut settings = agent_host::model::ModelSettings::new(model_id);
    settings.retry_base = Duration::from_millis(10);
    settings.max_attempts = 3;
    // Long: a request the fake holds at a `Gate` must outlast whatever the test does
    // meanwhile (a policy compiled on a cold cache), or the retry would take the next step.
    settings.request_timeout = Duration::from_secs(60);
    settings.streaming = streaming;
    agent_host::model::BedrockModel::new(&config, settings)
}

/// A photo-like JPEG of `width` × `height` pixels (gradients with some grain), as a phone
/// would upload it.
pub fn photo_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut grain = 0x9e37_79b9_u32;
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        grain ^= grain << 13;
        grain ^= grain >> 17;
        grain ^= grain << 5;
        let noise = (grain % 16) as u8;
        image::Rgb([
            (x * 255 / width) as u8 ^ noise,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8 ^ noise,
        ])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .unwrap();
    bytes.into_inner()
}

/// The command runner with the default settings, shared by a test binary's tests.
pub fn command_runner() -> &'static agent_host::exec::CommandRunner {
    static RUNNER: OnceLock<agent_host::exec::CommandRunner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        agent_host::exec::CommandRunner::new(agent_host::exec::ExecSettings::default())
    })
}

/// Whether every required promise about commands holds here; otherwise says so with
/// [`skip`] (a failure under CI).
pub fn commands_confined() -> bool {
    match command_runner().refusal() {
        None => true,
        Some(missing) => {
            skip(&format!(
                "commands are not confined on this host: {missing}"
            ));
            false
        }
    }
}

/// A port of 127.0.0.1 that is free at this moment (for a `serve` process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// Waits until a `serve` process on `port` answers `/ping` with a success.
///
/// # Panics
/// After 30 s without one.
pub async fn wait_until_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = reqwest::get(format!("http://127.0.0.1:{port}/ping")).await
            && reply.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "serve on port {port} did not come up in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `body` to `/invocations` of the `serve` process on `port`; its JSON answer.
///
/// # Panics
/// When the request fails or the answer is not JSON.
pub async fn invoke(port: u16, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/invocations"))
        .body(body.to_string())
        .send()
        .await
        .expect("POST /invocations")
        .json()
        .await
        .expect("a JSON answer")
}

/// Serves `state` (the real server) on a free port of 127.0.0.1 until the process ends;
/// returns its base URL, `http://127.0.0.1:PORT`.
pub async fn serve_locally(state: agent_host::server::AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(agent_host::server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    base
}
