"""The reconciler in process, on a memory store, with a scripted gateway: debounce, retries, modes.

These pin down what the process tests cannot without timing assumptions: a burst written in one go
gives exactly one push; failures retry with backoff and record the reason; nothing is pushed outside
ACI mode; start/stop can be repeated (as the HA leader election will do).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from netmaster.aci.client import GatewayResult, GatewayUnavailable
from netmaster.aci.reconciler import AciReconciler, RetryPolicy
from netmaster.objects.service import ObjectService
from netmaster.store import keys
from netmaster.store.memory import MemoryStore
from testbed.waiting import until


class ScriptedGateway:
    """Records every call; fails the next ``fail`` calls as unreachable, then answers ``answer``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tokens: list[int | None] = []
        self.fail = 0
        self.answer = GatewayResult("success", "ok")
        self.drift_state: dict[str, Any] = {"startedAt": 1.0, "appProfiles": []}

    async def _call(self, op: str, payload: dict[str, Any], token: int | None) -> GatewayResult:
        self.calls.append((op, payload))
        self.tokens.append(token)
        if self.fail:
            self.fail -= 1
            raise GatewayUnavailable("aci-gw at http://test unreachable: ConnectError")
        return self.answer

    async def create_app_profile(self, payload: dict[str, Any], fencing_token: int | None = None) -> GatewayResult:
        return await self._call("create", payload, fencing_token)

    async def delete_app_profile(self, payload: dict[str, Any], fencing_token: int | None = None) -> GatewayResult:
        return await self._call("delete", payload, fencing_token)

    async def drift(self) -> dict[str, Any]:
        return self.drift_state


@pytest.fixture
async def env() -> AsyncIterator[tuple[ObjectService, ScriptedGateway, AciReconciler]]:
    store = MemoryStore()
    objects = ObjectService(store)
    await objects.ensure_defaults(infra="aci")
    await objects.apply("network", "default:net", {"encap": "vlan", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1"})
    await objects.apply("endpointGroup", "default:app", {"networkName": "net"})
    await objects.apply("policy", "default:p", {})
    await objects.apply("endpointGroup", "default:db", {"networkName": "net", "policies": ["p"]})
    gateway = ScriptedGateway()
    reconciler = AciReconciler(store, gateway, retry=RetryPolicy(0.01, 0.05), debounce=0.02,  # type: ignore[arg-type]
                               drift_interval=0.05)
    await reconciler.start()
    yield objects, gateway, reconciler
    await reconciler.stop()
    await store.close()


async def state(objects: ObjectService, key: str = "default:prof") -> dict[str, Any]:
    kv = await objects.store.get(keys.aci_sync(key))
    return json.loads(kv.value) if kv else {}


async def synced(objects: ObjectService) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        s = await state(objects)
        return s if s.get("state") == "synced" and s["syncedHash"] == s["payloadHash"] else None

    return await until(probe)


async def test_a_burst_gives_one_push(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, _ = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app", "db"]})
    await synced(objects)
    gateway.calls.clear()
    for port in range(8000, 8010):
        await objects.apply(
            "rule",
            f"default:p:{port}",
            {"direction": "in", "action": "allow", "fromEndpointGroup": "app", "protocol": "tcp", "port": port},
        )
    await synced(objects)
    await asyncio.sleep(0.1)
    assert [op for op, _ in gateway.calls] == ["create"]
    entries = gateway.calls[0][1]["contract-defs"][0]["filter-info"]
    assert len(entries) == 10


async def test_unrelated_changes_push_nothing(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, _ = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})
    await synced(objects)
    gateway.calls.clear()
    # A policy no group of the profile uses, and a group outside it: same payload, no push.
    await objects.apply("policy", "default:other", {})
    await objects.apply("rule", "default:other:1", {"direction": "in", "action": "allow", "protocol": "icmp"})
    await objects.apply("endpointGroup", "default:lonely", {"networkName": "net"})
    await asyncio.sleep(0.2)
    assert gateway.calls == []


async def test_failures_retry_with_reason_then_sync(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, _ = env
    gateway.fail = 3
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})

    async def failed_thrice() -> dict[str, Any] | None:
        s = await state(objects)
        return s if s.get("attempts") == 3 else None

    failed = await until(failed_thrice)
    assert failed["state"] in ("failed", "pending")
    assert "unreachable" in failed["reason"]
    done = await synced(objects)
    assert done["attempts"] == 0
    assert len(gateway.calls) == 4


async def test_refusal_keeps_the_gateways_words(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, _ = env
    gateway.answer = GatewayResult("error-gw-config", "No bindings specified")
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})

    async def refused() -> dict[str, Any] | None:
        s = await state(objects)
        return s if s.get("state") == "failed" else None

    assert (await until(refused))["reason"] == "error-gw-config: No bindings specified"
    gateway.answer = GatewayResult("success", "ok")
    await synced(objects)


async def test_delete_calls_delete_and_forgets(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, _ = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})
    await synced(objects)
    await objects.delete("appProfile", "default:prof")

    async def forgotten() -> bool:
        return not await state(objects)

    await until(forgotten)
    assert gateway.calls[-1] == ("delete", {"tenant": "default", "app-prof": "prof"})


async def test_restart_pushes_once_more(env: tuple[ObjectService, ScriptedGateway, AciReconciler]) -> None:
    objects, gateway, reconciler = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})
    first = await synced(objects)
    await reconciler.stop()
    gateway.calls.clear()
    await reconciler.start()

    async def pushed() -> bool:
        return bool(gateway.calls) and (await state(objects))["lastSync"] > first["lastSync"]

    await until(pushed)
    assert [op for op, _ in gateway.calls] == ["create"]


async def test_nothing_is_pushed_outside_aci_mode() -> None:
    store = MemoryStore()
    objects = ObjectService(store)
    await objects.ensure_defaults()
    await objects.apply("network", "default:net", {"encap": "vlan", "subnet": "10.1.1.0/24"})
    await objects.apply("endpointGroup", "default:app", {"networkName": "net"})
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app"]})
    gateway = ScriptedGateway()
    reconciler = AciReconciler(store, gateway, debounce=0.01)  # type: ignore[arg-type]
    await reconciler.start()
    await asyncio.sleep(0.2)
    await reconciler.stop()
    assert gateway.calls == []
    assert await store.get(keys.aci_sync("default:prof")) is None


async def test_pushes_carry_a_fencing_token_that_grows_with_each_start(
    env: tuple[ObjectService, ScriptedGateway, AciReconciler],
) -> None:
    objects, gateway, reconciler = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app", "db"]})
    await synced(objects)
    first = reconciler.fencing_token
    assert first is not None
    assert set(gateway.tokens) == {first}
    await reconciler.stop()
    await reconciler.start()  # what a new leader does
    assert reconciler.fencing_token is not None
    assert reconciler.fencing_token > first
    await until(lambda: gateway.tokens[-1] == reconciler.fencing_token, what="a push with the new token")


async def test_the_gateways_repairs_reach_the_push_state(
    env: tuple[ObjectService, ScriptedGateway, AciReconciler],
) -> None:
    objects, gateway, _ = env
    await objects.apply("appProfile", "default:prof", {"endpointGroups": ["app", "db"]})
    before = (await synced(objects))["lastSync"]
    pushes = len(gateway.calls)
    gateway.drift_state = {"startedAt": 1.0, "appProfiles": [{
        "tenant": "default", "app": "prof", "repairs": 2, "driftRepairedAt": before + 5, "driftDetectedAt": before + 4,
        "lastDrift": ["deleted fvAEPg uni/tn-default/ap-prof/epg-app"]}]}

    async def repaired() -> dict[str, Any] | None:
        s = await state(objects)
        return s if s.get("repairs") == 2 else None

    record = await until(repaired, what="repairs in the push state")
    assert record["driftRepairedAt"] == before + 5
    assert record["lastSync"] == before + 5  # agents announce their endpoints again
    assert record["lastDrift"] == ["deleted fvAEPg uni/tn-default/ap-prof/epg-app"]
    assert len(gateway.calls) == pushes  # the gateway repaired; netmaster did not push
    gateway.drift_state = {"startedAt": 2.0, "appProfiles": []}  # aci-gw restarted: it knows no intent
    await until(lambda: len(gateway.calls) > pushes, what="the profile pushed again to the new gateway")
