"""Tenants from the APIC: in ACI mode the fabric administrator creates tenants there, netmaster follows.

On start and every ``interval`` seconds the importer reads the APIC's tenants through aci-gw's read
API and makes each one a netmaster tenant, so it can be used at once (networks, groups, policies).
Imported tenants carry ``status.source = "apic"`` (shown as ``source`` on GET and in ``netctl tenant
ls``) and, like every tenant present in the APIC, ``status.apic`` with its DN, VRFs and bridge
domains, for information.

What is not imported: the APIC's system tenants (``common``, ``infra``, ``mgmt``), tenants aci-gw
created itself (those are netmaster's own tenants, pushed with an app profile; importing them would
resurrect a tenant the user just deleted while the gateway is still removing it) and names netmaster
cannot hold. An imported tenant that disappears from the APIC is deleted from netmaster when nothing
uses it; otherwise it stays, marked ``status.apic.missing``, and the next run tries again.

The outcome of each run is kept at ``/contiv/aci/tenantImport`` and shown in the ``aciGw`` inspect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from netmaster.aci.client import AciGwClient, GatewayUnavailable
from netmaster.errors import ApiError, ConflictError, NotFoundError
from netmaster.objects.base import Record, infra_type, list_records
from netmaster.objects.service import ObjectService
from netmaster.store import keys
from netmaster.store.base import Store, StoreError
from netmaster.store.txn import read_only

log = logging.getLogger("netmaster.aci")

SYSTEM_TENANTS = frozenset({"common", "infra", "mgmt"})
SOURCE_APIC = "apic"


def apic_info(view: dict[str, Any]) -> dict[str, Any]:
    """The part of aci-gw's tenant view netmaster keeps: what an operator needs to write networks."""
    return {
        "dn": view.get("dn", f"uni/tn-{view.get('name', '')}"),
        "vrfs": sorted(v.get("name", "") for v in view.get("vrfs", [])),
        "bridgeDomains": sorted(
            (
                {"name": b.get("name", ""), "vrf": b.get("vrf", ""), "subnets": b.get("subnets", [])}
                for b in view.get("bridge-domains", [])
            ),
            key=lambda b: b["name"],
        ),
        "managedByAciGw": bool(view.get("managed")),
    }


class TenantImporter:
    def __init__(self, store: Store, objects: ObjectService, client: AciGwClient, interval: float = 30.0) -> None:
        self.store = store
        self.objects = objects
        self.client = client
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="aci-tenant-import")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                if await read_only(self.store, infra_type) == "aci":
                    await self.run_once()
            except ApiError as exc:  # the store is unavailable: try again next round
                log.warning("tenant import skipped: %s", exc.message)
            except Exception:  # a bug must not end the import for the life of the process
                log.exception("tenant import failed")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> dict[str, Any]:
        """One import round; returns (and stores) its report."""
        report: dict[str, Any] = {"lastRun": time.time(), "ok": True, "error": "", "imported": [], "removed": []}
        try:
            views = await self.client.tenants()
        except GatewayUnavailable as exc:
            report.update(ok=False, error=str(exc))
            log.warning("tenant import: %s", exc)
            await self._report(report)
            return report
        in_apic = {v.get("name", ""): v for v in views}
        local = {r.key: r for r in await read_only(self.store, lambda txn: list_records(txn, "tenant"))}
        report["apicTenants"] = sorted(in_apic)
        for name, view in sorted(in_apic.items()):
            info = apic_info(view)
            record = local.get(name)
            try:
                if record is None:
                    if name in SYSTEM_TENANTS or view.get("managed"):
                        continue
                    await self.objects.apply(
                        "tenant", name, {"tenantName": name}, status={"source": SOURCE_APIC, "apic": info}
                    )
                    report["imported"].append(name)
                    log.info("tenant %s imported from the APIC", name)
                elif record.status.get("apic") != info:
                    await self.objects.apply("tenant", name, record.config, status={"apic": info})
            except ApiError as exc:  # an APIC name netmaster cannot hold, or a concurrent change
                log.warning("tenant %s not imported: %s", name, exc.message)
                report.setdefault("skipped", {})[name] = exc.message
        for name, record in sorted(local.items()):
            if record.status.get("source") == SOURCE_APIC and name not in in_apic:
                await self._remove(name, record, report)
        await self._report(report)
        return report

    async def _remove(self, name: str, record: Record, report: dict[str, Any]) -> None:
        status = record.status
        try:
            await self.objects.delete("tenant", name)
        except ConflictError as exc:
            missing = {**status.get("apic", {}), "missing": True}
            if status.get("apic") != missing:
                await self.objects.apply("tenant", name, record.config, status={"apic": missing})
            report.setdefault("kept", {})[name] = exc.message
            return
        except NotFoundError:
            return
        report["removed"].append(name)
        log.info("tenant %s removed: gone from the APIC and unused", name)

    async def _report(self, report: dict[str, Any]) -> None:
        try:
            await self.store.put(keys.ACI_TENANT_IMPORT, json.dumps(report, separators=(",", ":")))
        except StoreError as exc:
            log.warning("tenant import report not saved: %s", exc)
