"""{{name}}: an agent-host policy plugin in Python, made by `agent-host plugin new`.

componentize-py turns this module into a WASI 0.2 component of the world in wit/world.wit:
the class `Policy` implements the exported `agent:plugin/policy` interface. It sees each
call of the tools plugin.toml names (`[policy] tools`) before it runs and allows, denies
(the model reads the reason) or rewrites it.
"""

from typing import List

from wit_world import exports
from wit_world.imports.types import ToolCall, Verdict, Verdict_Allow, Verdict_Deny

import rules


class Policy(exports.Policy):
    def check_call(self, call: ToolCall) -> Verdict:
        reason = rules.decide(call.tool, call.input)
        if reason is not None:
            return Verdict_Deny(reason)
        return Verdict_Allow()

    def check_changes(self, paths: List[str]) -> None:
        # Raise componentize_py_types.Err(message) to send a problem back to the model.
        return None

    def guidance(self) -> str:
        return rules.GUIDANCE
