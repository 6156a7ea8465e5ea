"""The in-memory object index: links, link-sets and encoded answers kept right through random changes.

After every step of a random sequence of creates, updates and deletes, every object's answer from the
incrementally maintained index (and its cached encoding) must equal what an index built from scratch
over the same store gives.
"""

from __future__ import annotations

import random

from netmaster.errors import ApiError
from netmaster.objects.index import ObjectIndex, encode_json
from netmaster.objects.service import ObjectService
from netmaster.store.cache import CachedStore
from netmaster.store.memory import MemoryStore


def _operations(rng: random.Random) -> list[tuple[str, str, dict | None]]:
    """(kind, key, body or None for delete), drawn from a small world so references collide."""
    out: list[tuple[str, str, dict | None]] = []
    for _ in range(400):
        tenant = rng.choice(["t1", "t2"])
        pick = rng.random()
        if pick < 0.1:
            out.append(("tenant", tenant, {}))
        elif pick < 0.25:
            net = rng.choice(["n1", "n2"])
            out.append(("network", f"{tenant}:{net}", {"encap": "vxlan", "subnet": f"10.{int(net[1])}.0.0/24"}))
        elif pick < 0.4:
            out.append(("policy", f"{tenant}:{rng.choice(['p1', 'p2'])}", {}))
        elif pick < 0.6:
            body = {"networkName": rng.choice(["n1", "n2"]), "policies": rng.sample(["p1", "p2"], rng.randint(0, 2))}
            out.append(("endpointGroup", f"{tenant}:{rng.choice(['g1', 'g2', 'g3'])}", body))
        elif pick < 0.7:
            body = {"endpointGroups": rng.sample(["g1", "g2", "g3"], rng.randint(0, 2))}
            out.append(("appProfile", f"{tenant}:{rng.choice(['a1', 'a2'])}", body))
        elif pick < 0.8:
            out.append(("rule", f"{tenant}:{rng.choice(['p1', 'p2'])}:1", {"direction": "in", "action": "allow"}))
        else:
            kind = rng.choice(["endpointGroup", "appProfile", "rule", "policy", "network", "tenant"])
            key = {
                "tenant": tenant,
                "network": f"{tenant}:n1",
                "policy": f"{tenant}:p1",
                "endpointGroup": f"{tenant}:g1",
                "appProfile": f"{tenant}:a1",
                "rule": f"{tenant}:p1:1",
            }[kind]
            out.append((kind, key, None))
    return out


async def test_incremental_index_equals_a_rebuilt_one() -> None:
    store = CachedStore(MemoryStore())
    objects = ObjectService(store)
    await objects.ensure_defaults()
    applied = 0
    for seed in range(3):
        for kind, key, body in _operations(random.Random(seed)):
            try:
                if body is None:
                    await objects.delete(kind, key)
                else:
                    await objects.apply(kind, key, body)
            except ApiError:
                continue  # refused (missing reference, in use, immutable): nothing changed
            applied += 1
            await store.fresh()
            # Read every answer first so the cached encodings are exercised across later changes.
            for k in objects.index.objects:
                objects.index.encoded_list(k)
        rebuilt = ObjectIndex(store)
        assert rebuilt.objects == objects.index.objects
        for kind, items in objects.index.objects.items():
            for key in items:
                record = rebuilt.record(kind, key)
                assert record is not None
                expected = rebuilt.decorate(record)
                assert objects.index.decorate(record) == expected, (kind, key)
                assert objects.index.encoded(kind, key) == encode_json(expected), (kind, key)
        store.remove_listener(rebuilt._on_event)
    assert applied > 300, "the random world should mostly produce accepted changes"
    await store.close()
