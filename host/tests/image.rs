//! The container image, checked without a Docker engine (none runs here or in CI):
//! - the Dockerfile copies paths that exist and builds what the workspace has;
//! - the image's layout, relocated under a temporary prefix (the same relative paths, the
//!   image's own configuration and environment, this test's uid: root, as in the image), is
//!   precompiled as the Dockerfile does, then `serve`s a scripted task against the Bedrock
//!   fake — loading every plugin from the read-only cache, compiling nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use agent_host::plugins::CpuFeatures;
use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use agent_host_tests::{free_port, invoke, wait_until_serving};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile().lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
            }
        }
    }
    out
}

/// The value of `ENV AGENT_HOST_PLUGIN_CPU_FEATURES` in the stage for `arch`.
fn pinned_features(arch: &str) -> String {
    let stage = format!("AS runtime-{arch}");
    let lines = instructions();
    let start = lines
        .iter()
        .position(|line| line.ends_with(&stage))
        .unwrap_or_else(|| panic!("no stage {stage}"));
    lines[start + 1]
        .strip_prefix("ENV AGENT_HOST_PLUGIN_CPU_FEATURES=")
        .unwrap_or_else(|| panic!("stage {stage} pins no features: {}", lines[start + 1]))
        .to_string()
}

#[test]
fn the_dockerfile_copies_what_exists_and_builds_what_the_workspace_has() {
    let lines = instructions();
    let root = repo();
    // Every source of a COPY from the build context exists.
    let copies: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
        .collect();
    assert!(copies.len() >= 5, "{copies:?}");
    for copy in &copies {
        let words: Vec<&str> = copy.split_whitespace().skip(1).collect();
        for source in &words[..words.len() - 1] {
            assert!(root.join(source).exists(), "COPY {source}: no such path");
        }
    }
    // Every workspace member's manifest is copied, or cargo cannot read the workspace.
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    for member in members {
        let member = member.as_str().unwrap();
        assert!(
            copies
                .iter()
                .any(|c| c.split_whitespace().nth(1) == Some(member)),
            "workspace member {member} is not copied"
        );
    }
    // The toolchain the workspace asks for, and the package and binary it builds.
    let rust_version = manifest["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap();
    assert!(
        lines.contains(&format!("ARG RUST_VERSION={rust_version}")),
        "the build stage's Rust is not the workspace's {rust_version}"
    );
    let build = lines
        .iter()
        .find(|l| l.starts_with("RUN cargo build"))
        .expect("a cargo build step");
    assert!(build.contains("-p agent-host --bin agent-host"), "{build}");
    assert!(
        build.contains("--locked") && build.contains("--release"),
        "{build}"
    );
    // The plugins come from where host/build.rs lays them out.
    let builtin = agent_host::plugins::builtin_plugins_dir().unwrap();
    assert!(
        builtin.ends_with("target/plugins/builtin"),
        "{}",
        builtin.display()
    );
    assert!(
        build.contains("cp -r target/plugins/builtin /out/plugins"),
        "{build}"
    );
    // The pinned features are ones the host takes, for both architectures.
    for arch in ["arm64", "amd64"] {
        let features = pinned_features(arch);
        assert!(
            matches!(features.parse::<CpuFeatures>(), Ok(CpuFeatures::Pinned(_))),
            "{arch}: {features}"
        );
    }
    // tini is PID 1, and serves the AgentCore contract's port.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"agent-host\""))
    );
    assert!(lines.contains(&"CMD [\"serve\", \"--port\", \"8080\"]".to_string()));
}

/// The image's filesystem below `prefix`: the binary, the plugins and the configuration
/// where the Dockerfile puts them, every absolute path of the configuration moved below
/// `prefix`. Returns the configuration file.
fn lay_out_image(prefix: &Path) -> PathBuf {
    let plugins = prefix.join("usr/local/lib/agent-host/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for entry in std::fs::read_dir(agent_host::plugins::builtin_plugins_dir().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, plugins.join(path.file_name().unwrap())).unwrap();
    }
    let config = std::fs::read_to_string(repo().join("image/agent-host.toml")).unwrap();
    let relocated = config.replace("\"/", &format!("\"{}/", prefix.display()));
    let file = prefix.join("etc/agent-host/agent-host.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, relocated).unwrap();
    for dir in [
        "var/lib/agent-host/state",
        "mnt/workspace",
        "var/tmp/agent-build",
    ] {
        std::fs::create_dir_all(prefix.join(dir)).unwrap();
    }
    file
}

fn host(config: &Path, prefix: &Path, features: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-host"));
    command
        .arg("--config")
        .arg(config)
        .current_dir(prefix)
        .env_remove("AGENT_HOST_STATE_DIR")
        .env_remove("AGENT_HOST_PLUGINS_DIR")
        .env("HOME", prefix.join("root"))
        .env("AGENT_HOST_PLUGIN_CPU_FEATURES", features)
        .env(
            "CARGO_TARGET_DIR",
            prefix.join("var/tmp/agent-build/target"),
        )
        .env("AGENT_HOST_LOG", "info")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_layout_precompiles_then_serves_a_task_from_the_read_only_cache() {
    let prefix = tempfile::tempdir().unwrap();
    let prefix = prefix.path();
    let config = lay_out_image(prefix);
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => panic!("no image for {other}"),
    };
    let features = pinned_features(arch);

    // What the Dockerfile's RUN does at build time.
    let output = host(&config, prefix, &features)
        .args(["plugin", "precompile"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cache = prefix.join("var/lib/agent-host/plugin-cache");
    let made_read_only = Command::new("chmod")
        .arg("-R")
        .arg("a-w")
        .arg(&cache)
        .arg(prefix.join("usr/local/lib/agent-host"))
        .status()
        .unwrap();
    assert!(made_read_only.success());

    // A container's start, and one task: write a file, then answer.
    let target = prefix.join("mnt/workspace/7/hello.txt");
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use(
            "w1",
            "Write",
            json!({"file_path": target, "content": "hi from the image\n"}),
        )),
        Step::Reply(Turn::text("Wrote hello.txt.")),
    ])
    .await;
    let port = free_port();
    let log = prefix.join("serve.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut serve = host(&config, prefix, &features)
        .args(["serve", "--port", &port.to_string()])
        .env("AGENT_HOST_ALLOWED_USERS", "7")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    wait_until_serving(port).await;
    let answer = invoke(
        port,
        &json!({"prompt": "write hello.txt", "user_id": "7", "mode": "sync"}),
    )
    .await;
    let _ = serve.kill();
    let _ = serve.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(prefix)
        .status();
    assert_eq!(answer["answer"], "Wrote hello.txt.", "{answer}\n{log}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "hi from the image\n"
    );
    assert!(log.contains("cache hit"), "{log}");
    assert!(!log.contains("cache miss"), "compiled at start:\n{log}");
}
