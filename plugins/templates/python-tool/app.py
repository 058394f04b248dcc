"""{{name}}: an agent-host tool plugin in Python, made by `agent-host plugin new`.

componentize-py turns this module into a WASI 0.2 component of the world in wit/world.wit:
the class `Tools` implements the exported `agent:plugin/tools` interface. `list` says what
the model sees (name, description, JSON Schema of the input); `call` runs a tool and returns
the text the model reads, or raises `Err` for an error result.
"""

import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import context, log
from wit_world.imports.types import ToolSpec

import words

INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {
            "type": "string",
            "description": "The file to count: absolute, or relative to the workspace root",
        }
    },
    "required": ["path"],
    "additionalProperties": False,
}


class Tools(exports.Tools):
    def list(self) -> List[ToolSpec]:
        return [
            ToolSpec(
                "WordCount",
                "Counts the lines, words and bytes of a text file in the workspace, like "
                "`wc`. Use it to size a file before reading it.",
                json.dumps(INPUT_SCHEMA),
            )
        ]

    def call(self, name: str, input: str) -> str:
        if name != "WordCount":
            raise Err(f"This plugin has no tool named {name!r}.")
        # The host checked `input` against INPUT_SCHEMA before this call.
        root = context.workspace_root()
        try:
            path = words.resolve(root, json.loads(input)["path"])
        except ValueError as refused:
            raise Err(str(refused))
        # Into the host's log (`log = true` in plugin.toml), seen with AGENT_HOST_LOG=debug.
        log.write(log.Level.DEBUG, f"counting {path}")
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            raise Err(f"File does not exist: {path}.")
        except PermissionError:
            # The sandbox refuses what leads out of the workspace, e.g. through a symlink.
            raise Err(
                f"Access denied: {path} could not be opened because it leads outside the "
                f"workspace {root} (for example through a symlink) or its permissions forbid it."
            )
        except OSError as error:
            raise Err(f"{path}: {error.strerror}")
        lines, word_count = words.count(data.decode("utf-8", "replace"))
        return f"{lines} lines, {word_count} words, {len(data)} bytes in {path}"
