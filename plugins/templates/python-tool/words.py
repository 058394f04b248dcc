"""What the WordCount tool does, in plain Python: no bindings, so `python3 -m unittest` tests
it without building the component. app.py calls it with the host's facts."""

import os
from typing import Tuple


def resolve(root: str, path: str) -> str:
    """`path` made absolute (relative paths start at the workspace `root`) and normalised.
    Raises ValueError, worded for the model, for a path that leaves the workspace: the sandbox
    would refuse it anyway, this says why."""
    if not path:
        raise ValueError("The path is empty: give a path inside the workspace.")
    full = os.path.normpath(os.path.join(root, path))
    if full != root and not full.startswith(root.rstrip("/") + "/"):
        raise ValueError(
            f"Access denied: {path} is outside the workspace {root}. "
            f"Only files under {root} can be read."
        )
    return full


def count(text: str) -> Tuple[int, int]:
    """The lines and words of `text`."""
    return len(text.splitlines()), len(text.split())
