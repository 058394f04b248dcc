//! The crate's modules form layers that point one way (see `src/lib.rs`): a module may use
//! the modules of the layers below its own, never those above or beside it. This test
//! reads every `use crate::…`, `crate::…` and `super::…` path in `src/` (outside comments
//! and unit tests) and names each import that goes the wrong way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, top first. Modules in one layer may not use each other, except in the top
/// layer, which wires everything together.
const LAYERS: &[&[&str]] = &[
    &["cli", "config", "start", "logging"],
    &["server", "run"],
    &["telegram"],
    &["agent"],
    &["session"],
    &["model", "plugins", "secrets"],
    &["exec"],
    &["shared"],
];

/// Inside `plugins`, the same rule between its rooms: the call path at the top, then
/// loading, then the engine.
const PLUGIN_ROOMS: &[&[&str]] = &[&["plugins"], &["plugins::load"], &["plugins::engine"]];

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = BTreeSet::new();
    let mut checked = 0;
    for file in rust_files(&src) {
        let module = module_path(&src, &file);
        if module.is_empty() {
            continue; // lib.rs and main.rs: the crate root declares every module.
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line_number, used) in used_paths(&module, &text) {
            checked += 1;
            if let Some(reason) = wrong_way(&module, &used) {
                wrong.insert(format!(
                    "{}:{line_number}: {} uses {used} ({reason})",
                    file.strip_prefix(&src).unwrap().display(),
                    module.join("::")
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths found: is the parser broken?"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layering of src/lib.rs:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_checker_sees_wrong_imports() {
    let engine = ["plugins", "engine", "sandbox"].map(String::from).to_vec();
    let found: Vec<_> = used_paths(
        &engine,
        "use crate::plugins::audit::AuditLog;\nuse super::runtime::X;\n// crate::agent::Job\n",
    )
    .into_iter()
    .map(|(_, path)| path)
    .collect();
    assert_eq!(
        found,
        ["plugins::audit::AuditLog", "plugins::engine::runtime::X"]
    );
    assert!(wrong_way(&engine, "plugins::audit::AuditLog").is_some());
    assert!(wrong_way(&engine, "plugins::engine::runtime::X").is_none());
    let model = ["model", "bedrock"].map(String::from).to_vec();
    assert!(wrong_way(&model, "plugins::ToolSpec").is_some());
    assert!(wrong_way(&model, "shared::sha256_hex").is_none());
    let agent = vec!["agent".to_string()];
    assert!(wrong_way(&agent, "server::Answer").is_some());
    let grouped: Vec<_> = used_paths(&agent, "use crate::{model::Usage, plugins::{A, B}};")
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    assert_eq!(grouped, ["model::Usage", "plugins::A", "plugins::B"]);
}

/// Why `module` may not use `used`, or `None` when it may.
fn wrong_way(module: &[String], used: &str) -> Option<String> {
    let used: Vec<&str> = used.split("::").collect();
    let (from, to) = (module[0].as_str(), used[0]);
    if from != to {
        let (from_layer, to_layer) = (layer_of(LAYERS, from)?, layer_of(LAYERS, to)?);
        return match from_layer.cmp(&to_layer) {
            std::cmp::Ordering::Less => None,
            std::cmp::Ordering::Equal if from_layer == 0 => None,
            std::cmp::Ordering::Equal => Some(format!("{to} is in the same layer")),
            std::cmp::Ordering::Greater => Some(format!("{to} is in a higher layer")),
        };
    }
    if from != "plugins" {
        return None;
    }
    let room = |path: &[&str]| match path.get(1) {
        Some(&"engine") => "plugins::engine",
        Some(&"load") => "plugins::load",
        _ => "plugins",
    };
    let module: Vec<&str> = module.iter().map(String::as_str).collect();
    let (from_room, to_room) = (room(&module), room(&used));
    let (from_rank, to_rank) = (
        layer_of(PLUGIN_ROOMS, from_room)?,
        layer_of(PLUGIN_ROOMS, to_room)?,
    );
    (from_rank > to_rank).then(|| format!("{to_room} is a room above {from_room}"))
}

fn layer_of(layers: &[&[&str]], name: &str) -> Option<usize> {
    layers.iter().position(|layer| layer.contains(&name))
}

/// The crate paths `text` (the file of `module`) uses, with their line numbers: `use`
/// declarations (grouped ones expanded) and inline `crate::`/`super::` paths. Comments and
/// the unit-test module at the end of a file are left out.
fn used_paths(module: &[String], text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut statement = String::new();
    let mut start = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = trimmed.split(" //").next().unwrap_or("");
        if statement.is_empty()
            && (code.starts_with("use ")
                || code.starts_with("pub use ")
                || code.starts_with("pub(crate) use "))
        {
            start = index + 1;
        }
        if !statement.is_empty() || start == index + 1 {
            statement.push_str(code);
            if code.ends_with(';') {
                let tree = statement.split_once("use ").map(|(_, t)| t).unwrap_or("");
                for path in expand(tree.trim_end_matches(';')) {
                    if let Some(path) = resolve(module, &path) {
                        found.push((start, path));
                    }
                }
                statement.clear();
            }
            continue;
        }
        for (offset, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            let rest = &code[offset..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let preceded_by_ident = code[..offset]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if !preceded_by_ident
                && let Some(path) = resolve(module, rest[..end].trim_end_matches(':'))
            {
                found.push((index + 1, path));
            }
        }
    }
    found
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split('@').next().unwrap_or(&tree).to_string()];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let mut parts = Vec::new();
    let (mut depth, mut begin) = (0, 0);
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[begin..index]);
                begin = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[begin..]);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| expand(&format!("{prefix}{part}")))
        .collect()
}

/// A `crate::`/`super::`/`self::` path as a path from the crate root; `None` for paths
/// outside the crate (`std::`, other crates) and for `self` alone.
fn resolve(module: &[String], path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("crate::") {
        return Some(rest.to_string());
    }
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    let mut relative = false;
    while let Some(after) = rest.strip_prefix("super::") {
        base.pop();
        rest = after;
        relative = true;
    }
    if let Some(after) = rest.strip_prefix("self::") {
        rest = after;
        relative = true;
    }
    if !relative || rest == "*" || base.is_empty() {
        return None;
    }
    Some(format!("{}::{rest}", base.join("::")))
}

/// `src/plugins/engine/sandbox.rs` → `[plugins, engine, sandbox]`; `mod.rs` names its
/// directory; `lib.rs` and `main.rs` are the root (empty).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}
