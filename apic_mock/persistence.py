"""The ``--state`` file: the whole tree as an APIC envelope, written atomically after each change.

Writing synchronously after every successful write keeps the file exact even if the process is
killed; it costs a few milliseconds per write at development scale, which is what ``--state`` is
for (benchmarks run without it).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def save(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".apic-mock-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> list[dict[str, Any]]:
    """The ``imdata`` list of an envelope file (or a bare list / single MO, for hand-written seeds)."""
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "imdata" in data:
        items = data["imdata"]
    elif isinstance(data, list):
        items = data
    else:
        items = [data]
    if not isinstance(items, list):
        raise ValueError(f"{path}: imdata must be a list")
    return items
