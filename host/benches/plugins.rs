//! Plugin runtime benchmarks (a bench binary, not criterion: the figures worth knowing
//! are percentiles of whole operations and ratios against native ripgrep).
//!
//! `cargo bench --bench plugins` prints:
//! - cold start: first-time compile of the built-in plugins, then load from the
//!   precompiled cache (in process), then `agent-host tools list` as a whole process;
//! - one `Read` of a small file end to end (fresh instance + call + drop): median, p99;
//! - the same `Read` behind a chain of 3 policies (the added latency per tool call);
//! - `Grep` (literal and regex, files_with_matches) over a generated tree of 20,000 files
//!   / ~200 MB against `rg -j1` on the same tree (when `rg` is installed);
//! - a call the way a task makes them: a `Read` (which records the read in session state)
//!   through the built-in policies, on a fresh session persisted under a temp state dir as
//!   the agent's is, after ~100 ms idle; only the call is timed.
//!
//! `BENCH_QUICK=1` shrinks iteration counts and the tree for a smoke run; `BENCH_OFF=a,b`
//! leaves those plugins out of the set (what one policy adds); `BENCH_IDLE=spin` spins
//! through the idle of `task` instead of sleeping. A word after
//! `--` runs only the sections whose name contains it: `cold`, `call`, `policies`, `grep`,
//! `task` (e.g. `cargo bench --bench plugins -- task`).

mod common;

use common::{ms, percentile, print_calls, us};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, PluginRuntime, PluginSet};

/// What every section needs: the built-in plugins loaded from a warm cache and a
/// workspace with a 200-line file.
struct Setup {
    quick: bool,
    plugins_dir: PathBuf,
    scratch: tempfile::TempDir,
    runtime: Arc<PluginRuntime>,
    set: PluginSet,
    /// The built-in tools without the policies.
    tools: PluginSet,
    workspace: PathBuf,
    /// `{"file_path": <the 200-line file>}`.
    input: String,
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    // `cargo bench` passes `--bench`; the first other word picks the sections.
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let wanted = |section: &str| section.contains(filter.as_str());
    let plugins_dir = agent_host::plugins::builtin_plugins_dir().expect("built-in plugins built");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let cache = scratch.path().join("cache");
    if wanted("cold") {
        cold_start(quick, &plugins_dir, &cache, scratch.path());
    }
    let runtime = Arc::new(PluginRuntime::new(Some(cache.clone())).unwrap());
    // `BENCH_OFF=policy-files,policy-commands`: the set without those plugins, to see
    // what each policy adds to a call.
    let settings = match std::env::var("BENCH_OFF") {
        Ok(off) => without(&off.split(',').collect::<Vec<_>>()),
        Err(_) => Default::default(),
    };
    let set = PluginSet::load_dir(&runtime, &plugins_dir, &settings).unwrap();
    // The same tools with the policies turned off: a call through it is the tool alone
    // (the registry's own call, which skips policies, is not public).
    let no_policies = without(&["policy-commands", "policy-files", "policy-validate"]);
    let tools = PluginSet::load_dir(&runtime, &plugins_dir, &no_policies).unwrap();
    assert!(tools.policies().is_empty());
    let workspace = scratch.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let file = workspace.join("small.rs");
    std::fs::write(&file, two_hundred_lines()).unwrap();
    let input = format!(r#"{{"file_path":"{}"}}"#, file.display());
    let setup = Setup {
        quick,
        plugins_dir,
        scratch,
        runtime,
        set,
        tools,
        workspace,
        input,
    };
    if wanted("call") || wanted("policies") {
        let samples = one_call(&setup);
        if wanted("policies") {
            policy_chain(&setup, &samples);
        }
    }
    if wanted("grep") {
        grep_vs_rg(&setup);
    }
    if wanted("task") {
        task_calls(&setup);
    }
}

/// Plugin settings that turn `plugins` off.
fn without(plugins: &[&str]) -> agent_host::plugins::PluginSettings {
    let settings: String = plugins
        .iter()
        .map(|plugin| format!("[{plugin}]\nenabled = false\n"))
        .collect();
    toml::from_str(&settings).expect("plugin names, as in the plugins' manifests")
}

fn two_hundred_lines() -> String {
    (0..200)
        .map(|i| format!("fn line_{i}() {{ println!(\"{i}\"); }}\n"))
        .collect()
}

fn cold_start(quick: bool, plugins_dir: &Path, cache: &Path, scratch: &Path) {
    println!("## cold start");
    let (compile, _) = time(|| load(plugins_dir, cache));
    println!("first start, compiling every plugin:     {}", ms(compile));
    let cached: Vec<Duration> = (0..if quick { 3 } else { 20 })
        .map(|_| time(|| load(plugins_dir, cache)).0)
        .collect();
    println!(
        "start with the precompiled cache (median of {}): {}",
        cached.len(),
        ms(percentile(&cached, 50.0))
    );
    let binary = Path::new(env!("CARGO_BIN_EXE_agent-host"));
    let process: Vec<Duration> = (0..if quick { 3 } else { 20 })
        .map(|_| {
            time(|| {
                let status = Command::new(binary)
                    .args(["tools", "list", "--json"])
                    .env("AGENT_HOST_STATE_DIR", scratch)
                    .env("AGENT_HOST_PLUGINS_DIR", plugins_dir)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("run agent-host");
                assert!(status.success());
            })
            .0
        })
        .collect();
    println!(
        "`agent-host tools list` process, cached (median): {}",
        ms(percentile(&process, 50.0))
    );
}

/// One `Read` in a hot loop (in-memory state); returns the samples.
fn one_call(setup: &Setup) -> Vec<Duration> {
    println!("\n## one tool call: Read of a 200-line file (fresh instance each call)");
    let Setup { tools, input, .. } = setup;
    let context = CallContext::new(setup.workspace.clone(), Arc::new(SessionState::in_memory()));
    let iterations = if setup.quick { 200 } else { 5000 };
    for _ in 0..100 {
        tools.call("Read", input, &context);
    }
    let samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let (elapsed, outcome) = time(|| tools.call("Read", input, &context).outcome);
            assert!(!outcome.is_error(), "{}", outcome.text());
            elapsed
        })
        .collect();
    println!(
        "{iterations} calls: median {}  p99 {}  min {}",
        us(percentile(&samples, 50.0)),
        us(percentile(&samples, 99.0)),
        us(percentile(&samples, 0.0))
    );

    // The runtime's share: the same fresh instance + call + drop around a tool that does
    // nothing (the test-only hostile plugin's `Giant` with an empty result).
    let testing = PathBuf::from(agent_host::plugins::TESTING_PLUGINS_DIR);
    let testing = PluginSet::load_dir(&setup.runtime, &testing, &Default::default()).unwrap();
    let empty: Vec<Duration> = (0..iterations)
        .map(|_| time(|| testing.call("Giant", r#"{"kb":0}"#, &context).outcome).0)
        .collect();
    println!(
        "an empty tool call, for comparison: median {}  p99 {}",
        us(percentile(&empty, 50.0)),
        us(percentile(&empty, 99.0))
    );
    samples
}

/// The same `Read` behind 3 copies of the example policy.
fn policy_chain(setup: &Setup, samples: &[Duration]) {
    println!("\n## the policy chain: the same Read behind 3 policies");
    let Setup {
        plugins_dir, input, ..
    } = setup;
    let context = CallContext::new(setup.workspace.clone(), Arc::new(SessionState::in_memory()));
    let iterations = if setup.quick { 200 } else { 5000 };
    let guarded_dir = setup.scratch.path().join("guarded");
    std::fs::create_dir_all(&guarded_dir).unwrap();
    std::fs::copy(
        plugins_dir.join("files.wasm"),
        guarded_dir.join("files.wasm"),
    )
    .unwrap();
    std::fs::copy(
        plugins_dir.join("files.toml"),
        guarded_dir.join("files.toml"),
    )
    .unwrap();
    let testing_dir = PathBuf::from(agent_host::plugins::TESTING_PLUGINS_DIR);
    let policy_manifest = std::fs::read_to_string(testing_dir.join("policy-example.toml")).unwrap();
    for n in 1..=3 {
        let name = format!("policy-{n}");
        std::fs::copy(
            testing_dir.join("policy-example.wasm"),
            guarded_dir.join(format!("{name}.wasm")),
        )
        .unwrap();
        std::fs::write(
            guarded_dir.join(format!("{name}.toml")),
            policy_manifest.replace("name = \"policy-example\"", &format!("name = \"{name}\"")),
        )
        .unwrap();
    }
    let guarded = PluginSet::load_dir(&setup.runtime, &guarded_dir, &Default::default()).unwrap();
    assert_eq!(guarded.policies().len(), 3);
    let chained: Vec<Duration> = (0..iterations)
        .map(|_| {
            let (elapsed, checked) = time(|| guarded.call("Read", input, &context));
            assert!(checked.ran && !checked.outcome.is_error());
            elapsed
        })
        .collect();
    let added = percentile(&chained, 50.0).saturating_sub(percentile(samples, 50.0));
    println!(
        "{iterations} calls: median {}  p99 {}  (+{} for 3 policies)",
        us(percentile(&chained, 50.0)),
        us(percentile(&chained, 99.0)),
        us(added)
    );
}

fn grep_vs_rg(setup: &Setup) {
    println!("\n## Grep over a generated tree vs rg -j1");
    let tools = &setup.tools;
    let (files, per_file) = if setup.quick {
        (2_000, 10_000)
    } else {
        (20_000, 10_500)
    };
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bench-tree-{files}"));
    let bytes = generate_tree(&tree, files, per_file);
    let tree = tree.canonicalize().unwrap();
    println!(
        "tree: {files} files, {:.0} MB in {}",
        bytes as f64 / 1e6,
        tree.display()
    );
    let context = CallContext::new(tree.clone(), Arc::new(SessionState::in_memory()));
    let rg = Command::new("rg").arg("--version").output().is_ok();
    for (label, pattern) in [
        ("literal", "NEEDLE_LITERAL_42"),
        ("regex", r"fn [a-z]+_handler\(\w+: u(8|16)\)"),
    ] {
        let grep = |_: ()| {
            let input = serde_json::json!({"pattern": pattern, "output_mode": "files_with_matches", "head_limit": 100000});
            let outcome = tools.call("Grep", &input.to_string(), &context).outcome;
            assert!(!outcome.is_error(), "{}", outcome.text());
            outcome
                .text()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let found = grep(());
        let plugin: Vec<Duration> = (0..5).map(|_| time(|| grep(())).0).collect();
        let plugin_median = percentile(&plugin, 50.0);
        print!("{label:8} plugin Grep: {} ({found})", ms(plugin_median));
        if rg {
            let native = |_: ()| {
                let output = Command::new("rg")
                    .args(["-j1", "-l", "--hidden", "--", pattern])
                    .arg(&tree)
                    .output()
                    .expect("run rg");
                output.stdout.iter().filter(|b| **b == b'\n').count()
            };
            let count = native(());
            let rg_times: Vec<Duration> = (0..5).map(|_| time(|| native(())).0).collect();
            let rg_median = percentile(&rg_times, 50.0);
            println!(
                "  rg -j1: {} ({count} files)  ratio {:.2}x",
                ms(rg_median),
                plugin_median.as_secs_f64() / rg_median.as_secs_f64()
            );
        } else {
            println!("  (rg not installed: `apt-get install ripgrep` to compare)");
        }
    }
}

/// Calls made the way a task makes them: one at a time with the model thinking in
/// between (100 ms idle here, so caches cool as they do in a task), each `Read` of a new
/// file recording what it read in the session state, which is persisted under a temp
/// state dir as the agent's is. Only the call is timed, not the idle before it. The same
/// calls with the state in memory, and without the policies, show where the time goes.
/// The persistent state is flushed after each call, as the agent does at the end of a
/// turn of one call; that flush (one atomic write and `fsync`) is timed apart. The
/// "prepared" rows make the call's instances before the idle, as the agent does when the
/// model's stream names the tool (`PluginSet::prepare`); their making is timed apart.
fn task_calls(setup: &Setup) {
    println!(
        "\n## a call the way a task makes them: Read of a new 200-line file after 100 ms idle, \
         recorded in the session state"
    );
    let calls = if setup.quick { 20 } else { 100 };
    let idle = Duration::from_millis(100);
    // `BENCH_IDLE=spin`: busy-wait instead of sleeping, to tell an idle CPU's wake-up
    // (frequency, sleep states) from caches other work has cooled.
    let spin = std::env::var("BENCH_IDLE").is_ok_and(|v| v == "spin");
    let text = two_hundred_lines();
    let rows = [
        (true, true, false),
        (true, true, true),
        (true, false, false),
        (false, true, false),
        (false, true, true),
        (false, false, false),
    ];
    for (policies, persistent, prepared) in rows {
        let label = format!(
            "{}, {}{}",
            if policies {
                "through the built-in policies"
            } else {
                "the tool alone               "
            },
            if persistent {
                "persistent state"
            } else {
                "state in memory "
            },
            if prepared {
                ", prepared before the idle"
            } else {
                ""
            },
        );
        let name = format!("task-{policies}-{persistent}-{prepared}");
        let session = if persistent {
            // As the agent opens a user's state: `<state_dir>/sessions/<user>/plugin-state.json`.
            SessionState::open(&setup.scratch.path().join(&name), "bench-user").unwrap()
        } else {
            SessionState::in_memory()
        };
        let context = CallContext::new(setup.workspace.clone(), Arc::new(session));
        let dir = setup.workspace.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let set = if policies { &setup.set } else { &setup.tools };
        let mut flushes = Vec::with_capacity(calls);
        let mut preparations = Vec::with_capacity(calls);
        let samples: Vec<Duration> = (0..calls)
            .map(|i| {
                let file = dir.join(format!("f{i}.rs"));
                std::fs::write(&file, &text).unwrap();
                let input = format!(r#"{{"file_path":"{}"}}"#, file.display());
                // As the agent does when the model's stream names the tool: the
                // instances are made, then the input arrives (the idle) and the call runs.
                let ahead = prepared.then(|| {
                    let (took, call) = time(|| set.prepare("Read", &context));
                    preparations.push(took);
                    call
                });
                if spin {
                    let until = Instant::now() + idle;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::sleep(idle);
                }
                let (elapsed, checked) = time(|| match ahead {
                    Some(ahead) => set.call_prepared(ahead, &input),
                    None => set.call("Read", &input, &context),
                });
                assert!(!checked.outcome.is_error(), "{}", checked.outcome.text());
                if prepared {
                    let judging = set.policies().iter().filter(|p| p.scope().covers("Read"));
                    assert_eq!(checked.made_ahead, judging.count() + 1);
                }
                if persistent {
                    assert!(context.session().has_unsaved_changes());
                    let (flushed, result) = time(|| context.session().flush());
                    result.unwrap();
                    flushes.push(flushed);
                }
                elapsed
            })
            .collect();
        print_calls(&label, &samples);
        if !preparations.is_empty() {
            println!(
                "  making the instances ahead, while the model writes the call: median {}  p90 {}",
                us(percentile(&preparations, 50.0)),
                us(percentile(&preparations, 90.0)),
            );
        }
        if !flushes.is_empty() {
            println!(
                "  the flush at the end of each turn (one atomic write + fsync): median {}  p90 {}  p99 {}",
                us(percentile(&flushes, 50.0)),
                us(percentile(&flushes, 90.0)),
                us(percentile(&flushes, 99.0)),
            );
        }
    }
    native_read_after_idle(setup, calls, idle, &text);
}

/// The floor under the rows above: the same `Read` done natively in this process (open,
/// read, number the lines, note the path as read), no sandbox and no policy, after the
/// same idle. What is left between it and a plugin call is the price of the sandbox.
fn native_read_after_idle(setup: &Setup, calls: usize, idle: Duration, text: &str) {
    let dir = setup.workspace.join("task-native");
    std::fs::create_dir_all(&dir).unwrap();
    let mut read_paths = std::collections::HashSet::new();
    let samples: Vec<Duration> = (0..calls)
        .map(|i| {
            let file = dir.join(format!("f{i}.rs"));
            std::fs::write(&file, text).unwrap();
            std::thread::sleep(idle);
            let (elapsed, numbered) = time(|| {
                let contents = std::fs::read_to_string(&file).unwrap();
                let mut numbered = String::with_capacity(contents.len() + 8 * 200);
                for (number, line) in contents.lines().enumerate() {
                    numbered.push_str(&format!("{:>6}\t{line}\n", number + 1));
                }
                read_paths.insert(file.display().to_string());
                numbered
            });
            assert!(numbered.contains("   200\t"));
            elapsed
        })
        .collect();
    print_calls("native, for scale (no sandbox, no policy)", &samples);
}

fn load(plugins_dir: &Path, cache: &Path) -> PluginSet {
    let runtime = Arc::new(PluginRuntime::new(Some(cache.to_path_buf())).unwrap());
    PluginSet::load_dir(&runtime, plugins_dir, &Default::default()).unwrap()
}

fn time<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let start = Instant::now();
    let result = f();
    (start.elapsed(), result)
}

/// Writes `files` source-like files of about `per_file` bytes (once; reused after),
/// 1% holding the literal needle and some holding regex matches. Returns total bytes.
fn generate_tree(root: &Path, files: usize, per_file: usize) -> u64 {
    let done = root.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(root);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words = [
            "let", "value", "match", "config", "result", "error", "buffer", "parse", "token",
            "stream",
        ];
        for i in 0..files {
            let dir: PathBuf = root.join(format!("d{:03}/s{:02}", i % 200, (i / 200) % 10));
            std::fs::create_dir_all(&dir).unwrap();
            let mut text = String::with_capacity(per_file + 100);
            while text.len() < per_file {
                for _ in 0..8 {
                    text.push_str(words[(next() % words.len() as u64) as usize]);
                    text.push(' ');
                }
                text.push('\n');
            }
            if i % 100 == 7 {
                text.push_str("const MARK: &str = \"NEEDLE_LITERAL_42\";\n");
            }
            if i % 37 == 3 {
                text.push_str("fn parse_handler(x: u16) {}\n");
            }
            std::fs::write(dir.join(format!("f{i}.rs")), text).unwrap();
        }
        std::fs::write(&done, "").unwrap();
    }
    walk_size(root)
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk_size(&entry.path())
            } else {
                entry.metadata().unwrap().len()
            }
        })
        .sum()
}
