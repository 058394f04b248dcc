//! A test-only tool plugin whose tools misbehave on purpose: each one attacks a limit or a
//! sandbox boundary, so the host's tests can prove that only that call fails.
//! The `Probe` tools use raw `std::fs` without the SDK's path checks: what they reach is
//! exactly what the sandbox lets through.

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, export_tools};
use serde::Deserialize;

fn schema(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

#[derive(Deserialize)]
pub struct Nothing {}

/// Spins forever: must hit the time limit.
pub struct Spin;
impl Tool for Spin {
    const NAME: &'static str = "Spin";
    type Input = Nothing;
    fn description() -> String {
        "Loops forever.".into()
    }
    fn input_schema() -> Value {
        schema(json!({}), &[])
    }
    fn call(_: Nothing) -> Result<String, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

/// Allocates without end: must hit the memory limit.
pub struct Bomb;
impl Tool for Bomb {
    const NAME: &'static str = "Bomb";
    type Input = Nothing;
    fn description() -> String {
        "Allocates memory until something stops it.".into()
    }
    fn input_schema() -> Value {
        schema(json!({}), &[])
    }
    fn call(_: Nothing) -> Result<String, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
        }
    }
}

/// Panics: must fail as a crash that shows the panic message.
pub struct Panic;
impl Tool for Panic {
    const NAME: &'static str = "Panic";
    type Input = Nothing;
    fn description() -> String {
        "Panics.".into()
    }
    fn input_schema() -> Value {
        schema(json!({}), &[])
    }
    fn call(_: Nothing) -> Result<String, String> {
        panic!("deliberate panic from the hostile plugin")
    }
}

/// Recurses without end: must trap with a stack overflow.
pub struct Recurse;
impl Tool for Recurse {
    const NAME: &'static str = "Recurse";
    type Input = Nothing;
    fn description() -> String {
        "Recurses forever.".into()
    }
    fn input_schema() -> Value {
        schema(json!({}), &[])
    }
    fn call(_: Nothing) -> Result<String, String> {
        // Ends only at a depth no stack can reach.
        fn down(depth: u64) -> u64 {
            if depth == u64::MAX {
                return depth;
            }
            std::hint::black_box(down(std::hint::black_box(depth + 1))) + 1
        }
        Ok(down(0).to_string())
    }
}

#[derive(Deserialize)]
pub struct GiantInput {
    kb: usize,
}

/// Returns a result of `kb` KiB: over the limit, must be refused.
pub struct Giant;
impl Tool for Giant {
    const NAME: &'static str = "Giant";
    type Input = GiantInput;
    fn description() -> String {
        "Returns a result of the given size.".into()
    }
    fn input_schema() -> Value {
        schema(json!({"kb": {"type": "integer", "minimum": 0}}), &["kb"])
    }
    fn call(input: GiantInput) -> Result<String, String> {
        Ok("x".repeat(input.kb * 1024))
    }
}

/// Reports the environment, arguments and preopened directories the plugin can see.
pub struct Environment;
impl Tool for Environment {
    const NAME: &'static str = "Environment";
    type Input = Nothing;
    fn description() -> String {
        "Shows what the process can see of its host.".into()
    }
    fn input_schema() -> Value {
        schema(json!({}), &[])
    }
    fn call(_: Nothing) -> Result<String, String> {
        let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<String> = std::env::args().collect();
        let root = agent_plugin_sdk::host::workspace_root();
        Ok(json!({"env": env, "args": args, "workspace": root}).to_string())
    }
}

#[derive(Deserialize)]
pub struct ProbeInput {
    path: String,
    #[serde(default)]
    write: Option<String>,
}

/// Reads (or writes, when `write` is given) a raw path with no checks but the sandbox's.
pub struct Probe;
impl Tool for Probe {
    const NAME: &'static str = "Probe";
    type Input = ProbeInput;
    fn description() -> String {
        "Reads or writes a path with no checks of its own.".into()
    }
    fn input_schema() -> Value {
        schema(
            json!({"path": {"type": "string"}, "write": {"type": "string"}}),
            &["path"],
        )
    }
    fn call(input: ProbeInput) -> Result<String, String> {
        match input.write {
            Some(text) => std::fs::write(&input.path, text)
                .map(|()| "written".to_string())
                .map_err(|e| format!("write failed: {e} (kind {:?})", e.kind())),
            None => std::fs::read(&input.path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .map_err(|e| format!("read failed: {e} (kind {:?})", e.kind())),
        }
    }
}

#[derive(Deserialize)]
pub struct RememberInput {
    key: String,
    value: Option<String>,
}

/// Stores a value in session state (or reads it back when `value` is absent).
pub struct Remember;
impl Tool for Remember {
    const NAME: &'static str = "Remember";
    type Input = RememberInput;
    fn description() -> String {
        "Stores or recalls a value in session state.".into()
    }
    fn input_schema() -> Value {
        schema(
            json!({"key": {"type": "string"}, "value": {"type": "string"}}),
            &["key"],
        )
    }
    fn call(input: RememberInput) -> Result<String, String> {
        match input.value {
            Some(value) => {
                agent_plugin_sdk::state::set(&input.key, &value).map(|()| "stored".into())
            }
            None => Ok(agent_plugin_sdk::state::get::<String>(&input.key)
                .unwrap_or_else(|| "<none>".into())),
        }
    }
}

export_tools!(
    Spin,
    Bomb,
    Panic,
    Recurse,
    Giant,
    Environment,
    Probe,
    Remember
);
