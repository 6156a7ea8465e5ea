"""The objects an APIC has from the start, and an optional small demo fabric.

Expressed as APIC envelope JSON (the same format as ``--seed`` files and ``/mock/dump``) so there is
one loader for all of them.
"""

from __future__ import annotations

from typing import Any


def mo(cls: str, attrs: dict[str, str], *children: dict[str, Any]) -> dict[str, Any]:
    """Build one MO in APIC's JSON shape."""
    body: dict[str, Any] = {"attributes": attrs}
    if children:
        body["children"] = list(children)
    return {cls: body}


def _users(users: dict[str, str]) -> list[dict[str, Any]]:
    return [mo("aaaUser", {"name": name, "pwd": pwd}) for name, pwd in users.items()]


def user_objects(users: dict[str, str]) -> list[dict[str, Any]]:
    """The ``--user`` accounts alone, applied over a loaded state file."""
    return [mo("aaaUserEp", {"dn": "uni/userext"}, *_users(users))]


def base_objects(users: dict[str, str]) -> list[dict[str, Any]]:
    """``uni`` with the system tenants and containers, users, and ``topology/pod-1``."""
    common = mo(
        "fvTenant",
        {"name": "common"},
        mo("fvCtx", {"name": "default"}),
        mo("fvBD", {"name": "default"}, mo("fvRsCtx", {"tnFvCtxName": "default"})),
        mo("vzFilter", {"name": "default"}, mo("vzEntry", {"name": "default"})),
        mo(
            "vzBrCP",
            {"name": "default"},
            mo("vzSubj", {"name": "default"}, mo("vzRsSubjFiltAtt", {"tnVzFilterName": "default"})),
        ),
        mo("qosCustomPol", {"name": "default"}),
        mo("monEPGPol", {"name": "default"}),
    )
    user_mos = _users(users)
    uni = mo(
        "polUni",
        {"dn": "uni"},
        common,
        mo("fvTenant", {"name": "infra"}),
        mo("fvTenant", {"name": "mgmt"}),
        mo("infraInfra", {}),
        mo("fabricInst", {}),
        mo("aaaUserEp", {}, *user_mos),
        mo("vmmProvP", {"vendor": "VMware"}),
        mo("vmmProvP", {"vendor": "Kubernetes"}),
    )
    topology = mo("fabricTopology", {"dn": "topology"}, mo("fabricPod", {"id": "1"}))
    return [uni, topology]


def demo_fabric(
    version: str, leaves: tuple[int, ...] = (101, 102), spines: tuple[int, ...] = (201,), ports: int = 48
) -> list[dict[str, Any]]:
    """One controller, spines and leaves with ``topSystem`` and leaf ports ``eth1/1..N``.

    Enough for leaf discovery (``fabricNode``/``topSystem`` with ``role``), static path and node
    bindings (``fvRsPathAtt``/``fvRsNodeAtt`` then resolve ``formed``) and version detection
    (``firmwareCtrlrRunning``).
    """

    def node(node_id: int, role: str, name: str, model: str) -> dict[str, Any]:
        addr = f"10.0.{node_id // 256}.{node_id % 256}"
        sys_children = []
        if role == "controller":
            sys_children.append(
                mo("firmwareCtrlrFwStatusCont", {}, mo("firmwareCtrlrRunning", {"version": version}))
            )
        system = mo(
            "topSystem",
            {
                "id": str(node_id),
                "name": name,
                "role": role,
                "podId": "1",
                "address": addr,
                "serial": f"SAL{node_id:06d}",
                "version": version,
            },
            *sys_children,
        )
        return mo(
            "fabricNode",
            {
                "id": str(node_id),
                "name": name,
                "role": role,
                "model": model,
                "serial": f"SAL{node_id:06d}",
                "address": addr,
                "version": version,
            },
            system,
        )

    nodes = [node(1, "controller", "apic1", "APIC-SERVER-M3")]
    nodes += [node(n, "spine", f"spine{n}", "N9K-C9332C") for n in spines]
    nodes += [node(n, "leaf", f"leaf{n}", "N9K-C93180YC-FX") for n in leaves]
    paths = [
        mo(
            "fabricPathEpCont",
            {"nodeId": str(n)},
            *[mo("fabricPathEp", {"name": f"eth1/{p}"}) for p in range(1, ports + 1)],
        )
        for n in leaves
    ]
    return [mo("fabricPod", {"dn": "topology/pod-1"}, *nodes, *paths)]
