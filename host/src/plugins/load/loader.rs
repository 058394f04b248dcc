//! Loading one plugin: manifest, component, world, grants, imports, linker, `InstancePre`.
//!
//! Every check happens here, once, so a bad plugin is refused at load with an error that
//! names the plugin, the file and the problem — never halfway through a user's task.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker};

use super::grants::PluginSettings;
use super::manifest::{CallScope, Capabilities, Manifest, World};
use crate::plugins::engine::bindings::policy::{self, PolicyPluginPre};
use crate::plugins::engine::bindings::tool::{self, ToolPluginPre};
use crate::plugins::engine::cache::CacheUse;
use crate::plugins::engine::runtime::PluginRuntime;
use crate::plugins::engine::sandbox::{CallState, PluginIdentity, Sandbox};
use crate::shared::sha256_hex;

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";

/// A plugin that passed every check, pre-linked for the world it implements: what the
/// call path needs to make a [`crate::plugins::ToolPlugin`] or a
/// [`crate::plugins::PolicyPlugin`] of it.
pub(crate) enum PreparedPlugin {
    /// Offers tools.
    Tool(Sandbox, ToolPluginPre<CallState>),
    /// Checks tool calls: those in its scope.
    Policy(Sandbox, PolicyPluginPre<CallState>, CallScope),
}

/// What a component file says about itself, before any grant is considered.
#[derive(Debug, Clone)]
pub struct ComponentFacts {
    /// The world it implements, judged by its exports.
    pub world: Result<World, String>,
    /// The names of everything it imports.
    pub imports: Vec<String>,
    /// The names of everything it exports.
    pub exports: Vec<String>,
    /// The version of `agent:plugin` it was built against (from the interfaces it exports
    /// or imports), whether or not this host speaks it.
    pub wit_version: Option<String>,
}

/// The manifest that belongs to component `wasm` in a plugin directory (`x.wasm` →
/// `x.toml`).
pub fn manifest_path(wasm: &Path) -> PathBuf {
    wasm.with_extension("toml")
}

/// How many directories above a component [`manifest_for_component`] looks for a
/// project's `plugin.toml`: enough for cargo's `target/wasm32-wasip2/release/x.wasm`.
const PROJECT_DEPTH: usize = 4;

/// The manifest of a component named on the command line (`plugin check`, `tools call
/// --plugin`): `x.toml` beside `x.wasm` as in a plugin directory, or else the `plugin.toml`
/// of the project it was built in (the nearest one at most four directories up, e.g. from
/// `target/wasm32-wasip2/release/`). A plugin directory never looks beyond the first.
pub fn manifest_for_component(wasm: &Path) -> anyhow::Result<PathBuf> {
    let beside = manifest_path(wasm);
    if beside.is_file() {
        return Ok(beside);
    }
    let found = wasm
        .ancestors()
        .skip(1)
        .take(PROJECT_DEPTH + 1)
        .map(|dir| dir.join("plugin.toml"))
        .find(|candidate| candidate.is_file());
    found.with_context(|| {
        format!(
            "no manifest for {}: put it beside the component as {}, or build the component \
             in a project whose plugin.toml is at most {PROJECT_DEPTH} directories above it",
            wasm.display(),
            beside.display()
        )
    })
}

/// Checks and pre-links the plugin whose component is `wasm` and whose manifest is
/// `manifest`, with the operator's `settings`; an error names the plugin, the file and
/// the problem.
pub(crate) fn prepare_plugin(
    runtime: &Arc<PluginRuntime>,
    wasm: &Path,
    manifest: &Path,
    settings: &PluginSettings,
) -> anyhow::Result<PreparedPlugin> {
    let manifest = Manifest::load(manifest)?;
    let name = manifest.name.clone();
    load_with_manifest(runtime, wasm, manifest, settings)
        .with_context(|| format!("plugin {name} ({}) is refused", wasm.display()))
}

fn load_with_manifest(
    runtime: &Arc<PluginRuntime>,
    wasm: &Path,
    manifest: Manifest,
    settings: &PluginSettings,
) -> anyhow::Result<PreparedPlugin> {
    let bytes = read_component(wasm)?;
    let digest = sha256_hex(&bytes, 32);
    let started = std::time::Instant::now();
    let (component, cache) = compile_bytes(runtime, &bytes)?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match cache {
        CacheUse::Hit => {
            tracing::info!(plugin = %manifest.name, elapsed_ms, "plugin loaded: precompiled (cache hit)")
        }
        CacheUse::Compiled => {
            tracing::info!(plugin = %manifest.name, elapsed_ms, "plugin loaded: compiled now (cache miss)")
        }
        CacheUse::Disabled => {
            tracing::debug!(plugin = %manifest.name, elapsed_ms, "plugin compiled (no cache)")
        }
    }
    let facts = inspect(runtime, &component);
    let world = facts.world.clone().map_err(anyhow::Error::msg)?;
    if world != manifest.world {
        anyhow::bail!(
            "its manifest says world = \"{}\" but the component implements {world}",
            manifest.world
        );
    }
    let grant = settings.for_plugin(&manifest.name);
    let capabilities = grant
        .resolve(&manifest, &digest)
        .map_err(anyhow::Error::msg)?;
    check_imports(&facts.imports, &capabilities)?;
    let identity = Arc::new(PluginIdentity {
        name: manifest.name.clone(),
        file: wasm.to_path_buf(),
        capabilities: capabilities.clone(),
        limits: manifest.limits,
        config: grant.merged_config(&manifest).to_string(),
    });
    let sandbox = Sandbox {
        runtime: runtime.clone(),
        identity,
    };
    let linker = linker_for(runtime, &capabilities)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .context("the component does not fit the host's interfaces")?;
    Ok(match world {
        World::Tool => {
            let pre = tool::ToolPluginPre::new(pre)
                .map_err(anyhow::Error::from)
                .context("the component's tools export does not match the WIT contract")?;
            PreparedPlugin::Tool(sandbox, pre)
        }
        World::Policy => {
            let pre = policy::PolicyPluginPre::new(pre)
                .map_err(anyhow::Error::from)
                .context("the component's policy export does not match the WIT contract")?;
            PreparedPlugin::Policy(sandbox, pre, manifest.call_scope())
        }
    })
}

/// Reads and compiles (or loads from the cache) the component at `wasm`.
pub fn compile_file(runtime: &PluginRuntime, wasm: &Path) -> anyhow::Result<(Component, CacheUse)> {
    compile_bytes(runtime, &read_component(wasm)?)
}

fn read_component(wasm: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(wasm).with_context(|| format!("cannot read the component {}", wasm.display()))
}

fn compile_bytes(runtime: &PluginRuntime, bytes: &[u8]) -> anyhow::Result<(Component, CacheUse)> {
    check_is_component(bytes)?;
    runtime
        .compile(bytes)
        .context("the component does not compile (is the file corrupt?)")
}

fn check_is_component(bytes: &[u8]) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_VERSION: &[u8] = &[1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        anyhow::bail!("the file is not WebAssembly (it does not start with the wasm magic bytes)");
    }
    if &bytes[4..8] == CORE_VERSION {
        anyhow::bail!(
            "the file is a core wasm module, not a component: build it for the wasm32-wasip2 \
             target (or wrap it with `wasm-tools component new`)"
        );
    }
    Ok(())
}

/// What a compiled component imports and exports, and which world that makes it.
pub fn inspect(runtime: &PluginRuntime, component: &Component) -> ComponentFacts {
    let engine = runtime.engine();
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let world = world_of(&exports);
    let wit_version = exports
        .iter()
        .chain(&imports)
        .find_map(|name| name.strip_prefix("agent:plugin/")?.split_once('@'))
        .map(|(_, version)| version.to_string());
    ComponentFacts {
        world,
        imports,
        exports,
        wit_version,
    }
}

fn world_of(exports: &[String]) -> Result<World, String> {
    let find = |interface: &str| {
        exports.iter().find_map(|name| {
            let rest = name.strip_prefix(&format!("agent:plugin/{interface}"))?;
            Some(rest.strip_prefix('@').unwrap_or("").to_string())
        })
    };
    let found = [
        (World::Tool, find("tools")),
        (World::Policy, find("policy")),
    ];
    let mut worlds = found
        .iter()
        .filter_map(|(world, version)| version.as_ref().map(|v| (*world, v)));
    match (worlds.next(), worlds.next()) {
        (Some(_), Some(_)) => Err(
            "the component exports both agent:plugin/tools and agent:plugin/policy; \
             a plugin implements exactly one world"
                .into(),
        ),
        (Some((world, version)), None) if version == WIT_VERSION => Ok(world),
        (Some((world, version)), None) => Err(format!(
            "the component implements {world} of agent:plugin@{version}, but this host speaks \
             agent:plugin@{WIT_VERSION}; rebuild it against wit/ of this host"
        )),
        (None, _) => Err(format!(
            "the component exports neither agent:plugin/tools@{WIT_VERSION} (tool-plugin) nor \
             agent:plugin/policy@{WIT_VERSION} (policy-plugin); its exports are: [{}]",
            exports.join(", ")
        )),
    }
}

/// Refuses imports the plugin was not granted or the host does not offer.
fn check_imports(imports: &[String], capabilities: &Capabilities) -> anyhow::Result<()> {
    for import in imports {
        let Some(rest) = import.strip_prefix("agent:plugin/") else {
            if import.starts_with("wasi:") {
                continue;
            }
            anyhow::bail!(
                "the component imports {import}, which the host does not provide \
                 (only wasi:* 0.2 and agent:plugin/* are offered)"
            );
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if version != WIT_VERSION {
            anyhow::bail!(
                "the component imports {import}, but this host speaks agent:plugin@{WIT_VERSION}"
            );
        }
        if matches!(interface, "types" | "context") {
            continue;
        }
        let Some((key, granted)) = capabilities.import_grant(interface) else {
            anyhow::bail!("the component imports an unknown interface agent:plugin/{interface}")
        };
        if !granted {
            anyhow::bail!(
                "the component imports {import} but its manifest does not ask for it \
                 (add `{key} = true` under [capabilities] in the manifest; the operator must \
                 grant it too)"
            );
        }
    }
    Ok(())
}

/// A linker with WASI and exactly the granted host capabilities.
fn linker_for(
    runtime: &PluginRuntime,
    capabilities: &Capabilities,
) -> anyhow::Result<Linker<CallState>> {
    use tool::agent::plugin::{context, exec, log, session_state, types};
    let mut linker = Linker::new(runtime.engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    types::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
    context::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
    if capabilities.log {
        log::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
    }
    if capabilities.session_state {
        session_state::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
    }
    if capabilities.exec {
        exec::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
        // Probe (and log) what confines commands now, at load, not at the first command.
        runtime.command_runner();
    }
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worlds_are_told_apart_by_their_exports() {
        let exports = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            world_of(&exports(&["agent:plugin/tools@0.1.0"])),
            Ok(World::Tool)
        );
        assert_eq!(
            world_of(&exports(&["agent:plugin/policy@0.1.0"])),
            Ok(World::Policy)
        );
        assert!(
            world_of(&exports(&["agent:plugin/tools@0.2.0"]))
                .unwrap_err()
                .contains("0.2.0")
        );
        assert!(
            world_of(&exports(&["wasi:cli/run@0.2.0"]))
                .unwrap_err()
                .contains("neither")
        );
    }

    #[test]
    fn ungranted_imports_are_named() {
        let caps = Capabilities::default();
        let error = check_imports(&["agent:plugin/session-state@0.1.0".into()], &caps).unwrap_err();
        assert!(
            error.to_string().contains("session_state = true"),
            "{error}"
        );
        assert!(check_imports(&["wasi:filesystem/types@0.2.6".into()], &caps).is_ok());
        assert!(check_imports(&["acme:evil/thing".into()], &caps).is_err());
    }

    #[test]
    fn non_components_are_refused_clearly() {
        assert!(
            check_is_component(b"hello")
                .unwrap_err()
                .to_string()
                .contains("not WebAssembly")
        );
        let core = b"\0asm\x01\x00\x00\x00";
        assert!(
            check_is_component(core)
                .unwrap_err()
                .to_string()
                .contains("core wasm module")
        );
    }
}
