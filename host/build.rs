//! Builds the guest plugins (the separate `plugins/` workspace) for `wasm32-wasip2`, so one
//! `cargo build` / `cargo test` builds everything, and lays them out as plugin
//! directories: `target/plugins/builtin/<name>.{wasm,toml}` (shipped) and
//! `target/plugins/testing/<name>.{wasm,toml}` (test-only components).

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let host_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = host_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let wasm_target_dir = target_dir.join("plugins");

    println!("cargo:rerun-if-changed={}", plugins.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    build_plugins(&plugins, &wasm_target_dir);

    let artifacts = wasm_target_dir.join(WASM_TARGET).join("release");
    let builtin = wasm_target_dir.join("builtin");
    let testing = wasm_target_dir.join("testing");
    lay_out(&plugin_dirs(&plugins, ""), &artifacts, &builtin);
    lay_out(&plugin_dirs(&plugins, "testing"), &artifacts, &testing);
    println!(
        "cargo:rustc-env=AGENT_HOST_BUILTIN_PLUGINS_DIR={}",
        builtin.display()
    );
    // The host grants the built-ins their default capabilities by these digests, not by
    // the names in their manifests (see plugins/grants.rs).
    println!(
        "cargo:rustc-env=AGENT_HOST_BUILTIN_DIGESTS={}",
        digests(&plugin_dirs(&plugins, ""), &builtin)
    );
    println!(
        "cargo:rustc-env=AGENT_HOST_TESTING_PLUGINS_DIR={}",
        testing.display()
    );
}

/// Runs `cargo build --release --target wasm32-wasip2` on the plugins workspace.
fn build_plugins(plugins: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        // Run inside plugins/ so its .cargo/config.toml (guest rustflags) applies.
        .current_dir(plugins)
        .args(["build", "--release", "--workspace", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // What the outer build set for the host must not leak into the guest build: flags
    // for the native target, and clippy's compiler wrapper when run under `cargo clippy`.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .expect("cannot run cargo to build the plugins");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            format!(
                "\n\nThe {WASM_TARGET} target is missing: run `rustup target add {WASM_TARGET}`."
            )
        } else {
            String::new()
        };
        panic!("building the plugins for {WASM_TARGET} failed:\n{stderr}{hint}");
    }
}

/// The plugin crates directly under `workspace/sub`: sub-directories with a `plugin.toml`
/// that are members of the guest workspace. A directory that is not a member yet (work in
/// progress) is skipped with a warning rather than breaking the host's build.
fn plugin_dirs(workspace: &Path, sub: &str) -> Vec<PathBuf> {
    let members = workspace_members(workspace);
    let dir = workspace.join(sub);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("plugin.toml").is_file());
    dirs.retain(|d| {
        let member = members.iter().any(|m| workspace.join(m) == *d);
        if !member {
            println!(
                "cargo:warning={} has a plugin.toml but is not a member of the plugins \
                 workspace (plugins/Cargo.toml); it is not built",
                d.display()
            );
        }
        member
    });
    dirs.sort();
    dirs
}

/// The `members = [...]` of the guest workspace's `Cargo.toml`.
fn workspace_members(workspace: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap_or_default();
    let list = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_default();
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Copies each plugin's component and manifest into `out` as `<name>.wasm` /
/// `<name>.toml`, removing what no longer belongs there.
fn lay_out(plugin_dirs: &[PathBuf], artifacts: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("create plugin output directory");
    let mut expected = Vec::new();
    for dir in plugin_dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 plugin directory name");
        let artifact = artifacts.join(format!("agent_plugin_{}.wasm", name.replace('-', "_")));
        copy_if_changed(&artifact, &out.join(format!("{name}.wasm")));
        copy_if_changed(&dir.join("plugin.toml"), &out.join(format!("{name}.toml")));
        expected.push(format!("{name}.wasm"));
        expected.push(format!("{name}.toml"));
    }
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !expected.contains(&file_name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `name=<sha256 hex>` of each laid-out component in `dir`, comma-separated.
fn digests(plugin_dirs: &[PathBuf], dir: &Path) -> String {
    use sha2::{Digest as _, Sha256};
    plugin_dirs
        .iter()
        .filter_map(|plugin| plugin.file_name().and_then(|n| n.to_str()))
        .map(|name| {
            let wasm = dir.join(format!("{name}.wasm"));
            let bytes = std::fs::read(&wasm)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", wasm.display()));
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{name}={hex}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap_or_else(|error| {
        panic!("cannot read built plugin file {}: {error}", from.display())
    });
    if std::fs::read(to).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(to, bytes)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", to.display()));
    }
}
