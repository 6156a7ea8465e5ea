"""The pipeline framework: features declare tables in stages, the framework numbers them.

Modelled on Antrea's pipeline framework (pkg/agent/openflow/pipeline.go): a table is declared with a
name, the *stage* it belongs to, the feature that owns it and its one job. Stages are ordered; inside
a stage tables keep their declaration order. ``Pipeline`` sorts the declarations, gives the tables
consecutive OpenFlow ids from 0 and knows each table's successor, so a flow that "goes on" says
``pipeline.next(table)`` instead of naming the table after it.

Why: a feature added later (service load balancing, BGP routes, host access, QoS) declares its own
table in a new or existing stage and every id and every "go on" goto follows; no table is
renumbered by hand and no other feature's flows change. Stage values are spaced by 10 so a new
stage fits between two existing ones without renumbering the stages either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from agent.ovs.flow import Feature


class Stage(IntEnum):
    """Where a table sits in the packet's path. The lower-case name is the stage's name in
    ``--dump-pipeline`` and ``/inspect/driver``."""

    CLASSIFIER = 10  # where from: ingress port -> source type, segment, tenant, source EPG
    SPOOF_GUARD = 20  # validation: a local endpoint sends only from its own addresses
    ARP_RESPONDER = 30  # ARP answered in the switch
    CONNTRACK_STATE = 40  # conntrack lookup (with the NAT of service connections), invalid dropped
    SERVICE_LB = 50  # a new connection to a service VIP: a provider picked and DNATed; DNATed packets' L2
    EGRESS_POLICY = 60  # destination EPG lookup, the sender's out rules
    L3_FORWARDING = 70  # routing fwdMode
    QOS = 80  # a local endpoint's group netprofile: rate limit (meter) and DSCP marking
    L2_FORWARDING = 90  # switching: the decision where a frame goes (no output here)
    INGRESS_POLICY = 100  # the receiver's in rules
    CONNTRACK_COMMIT = 110  # allowed new connections are committed
    OUTPUT = 120  # the only stage that sends


@dataclass(frozen=True)
class TableSpec:
    """A table a feature needs: its name, its stage, its owner and its one job (for docs/inspect)."""

    name: str
    stage: Stage
    feature: Feature
    job: str


class Pipeline:
    """Declared tables realized: ids in stage order, the goto chain, and the ``Table`` enum."""

    def __init__(self, specs: Sequence[TableSpec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"a table is declared twice: {sorted(n for n in names if names.count(n) > 1)}")
        # sorted() is stable: inside a stage the declaration order stands.
        self.specs: tuple[TableSpec, ...] = tuple(sorted(specs, key=lambda s: s.stage))
        self.table = IntEnum("Table", [(s.name, i) for i, s in enumerate(self.specs)])  # type: ignore[misc]

    def spec(self, table: int) -> TableSpec:
        return self.specs[table]

    def next(self, table: int) -> IntEnum:
        """The table after *table*: where a packet that this table passes on goes."""
        if table + 1 >= len(self.specs):
            raise ValueError(f"{self.specs[table].name} is the last table; nothing comes after it")
        return self.table(table + 1)

    def stage_of(self, table: int) -> Stage:
        return self.specs[table].stage

    def stages(self) -> list[tuple[Stage, tuple[IntEnum, ...]]]:
        """Stages that hold tables, in order, each with its tables."""
        out: dict[Stage, list[IntEnum]] = {}
        for i, spec in enumerate(self.specs):
            out.setdefault(spec.stage, []).append(self.table(i))
        return [(stage, tuple(tables)) for stage, tables in out.items()]
