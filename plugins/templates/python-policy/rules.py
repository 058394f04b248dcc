"""The rules of this policy, in plain Python: no bindings, so `python3 -m unittest` tests
them without building the component. app.py turns their answers into verdicts."""

import json
from typing import Optional

# Files that package managers write, never people.
LOCK_FILES = {
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Gemfile.lock",
    "go.sum",
}


def decide(tool: str, tool_input: str) -> Optional[str]:
    """The reason to deny a call of `tool` with `tool_input` (a JSON object), or None."""
    if tool not in ("Write", "Edit"):
        return None
    try:
        value = json.loads(tool_input)
    except ValueError:
        return None
    path = value.get("file_path") if isinstance(value, dict) else None
    if not isinstance(path, str):
        return None
    file_name = path.rsplit("/", 1)[-1]
    if file_name not in LOCK_FILES:
        return None
    return (
        f"{file_name} is written by its package manager, not by hand: change the manifest "
        "and run the package manager (e.g. `cargo update -p NAME`, `npm install`) instead"
    )


GUIDANCE = (
    "Never edit lock files (Cargo.lock, package-lock.json, ...) by hand: change the "
    "manifest and let the package manager update the lock file."
)
