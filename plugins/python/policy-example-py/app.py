"""policy-example-py: the Python twin of plugins/testing/policy-example (Rust).

It decides exactly like its twin, so the same tests can run against both:

- `Write` whose `file_path` (or `path`) contains `/secret/` is denied;
- `Probe` calls that have a path are rewritten with `path` set to `"blocked"`;
- `check_changes` rejects any path ending in `.bad`;
- for the host's fail-closed tests, an input mentioning `policy-trap`, `policy-loop` or
  `policy-memory` makes the policy raise, spin forever or allocate past its memory limit,
  and `policy-bad-rewrite` rewrites the call into one the tool must refuse.

componentize-py turns this module into a WASI 0.2 component of the `policy-plugin` world
of wit/plugin.wit: the class `Policy` below implements the exported `policy` interface.
"""

import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    ToolCall,
    Verdict,
    Verdict_Allow,
    Verdict_Deny,
    Verdict_Rewrite,
)


def _path_of(value) -> "str | None":
    # Like the twin's `input.get("file_path").or_else(|| input.get("path"))`, then
    # `as_str`: a `file_path` that is present but not a string does not fall back to
    # `path`, and an input that is not a JSON object has no path at all.
    if not isinstance(value, dict):
        return None
    found = value["file_path"] if "file_path" in value else value.get("path")
    return found if isinstance(found, str) else None


class Policy(exports.Policy):
    def check_call(self, call: ToolCall) -> Verdict:
        if "policy-trap" in call.input:
            # An uncaught exception in an export without a `result` is a trap.
            raise RuntimeError("policy-example-py: asked to trap")
        if "policy-loop" in call.input:
            while True:
                pass
        if "policy-memory" in call.input:
            hog = bytearray(1 << 30)
            return Verdict_Deny(f"unreachable: held {len(hog) >> 20} MiB")
        if "policy-bad-rewrite" in call.input:
            return Verdict_Rewrite('{"not_a_field": true}')
        try:
            value = json.loads(call.input)
        except ValueError:
            value = None
        path = _path_of(value)
        if call.tool == "Write" and path is not None and "/secret/" in path:
            return Verdict_Deny(
                f"policy-example: writing into secret/ is not allowed ({path})"
            )
        if call.tool == "Probe" and path is not None:
            value["path"] = "blocked"
            # Compact, with sorted keys and raw UTF-8: the text the twin's serde_json
            # prints for the same object.
            return Verdict_Rewrite(
                json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
            )
        return Verdict_Allow()

    def check_changes(self, paths: List[str]) -> None:
        for path in paths:
            if path.endswith(".bad"):
                # Raising `Err` returns the `err` case of `result<_, string>`.
                raise Err(f"{path}: files ending in .bad are not allowed")

    def guidance(self) -> str:
        return "Never write files under a secret/ directory."
