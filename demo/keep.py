"""What ``scripts/demo --keep`` leaves running, and ``scripts/demo down`` removing it.

A kept demo is recorded in one file naming the simulated cluster's prefix (its record, in turn, lists
every process, namespace and link) and apic_mock's scratch directory, so ``down`` works from a new
shell, after the demo process is long gone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testbed.cluster import down as cluster_down

RECORD = Path("/tmp/contiv-demo.json")


def save(prefix: str, apic_workdir: Path, access: dict[str, str]) -> None:
    RECORD.write_text(json.dumps({"prefix": prefix, "apicWorkdir": str(apic_workdir), "access": access}, indent=2))


def down() -> int:
    """Remove a kept demo (every process, namespace, link and file of it); 0 also when there is none."""
    try:
        record = json.loads(RECORD.read_text())
    except FileNotFoundError:
        print("no demo is running (nothing recorded in " + str(RECORD) + ")")
        return 0
    except ValueError as exc:
        print(f"{RECORD} is unreadable ({exc}); remove it, then `python -m testbed.cluster down --all`")
        return 1
    cluster_down(record["prefix"])
    shutil.rmtree(record["apicWorkdir"], ignore_errors=True)
    RECORD.unlink()
    print(f"demo {record['prefix']} removed: processes, namespaces, links and files")
    return 0
