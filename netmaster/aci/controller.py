"""netmaster's ACI side in one start/stop unit: the push reconciler and the tenant importer.

Both are background loops that must run in exactly one netmaster of a cluster (two reconcilers would
push the same profiles twice; two importers would race creating tenants), so they are started and
stopped together: by the API's lifespan today, by the leader election when netmaster runs in HA
(``start()`` on becoming leader, ``stop()`` on losing the lease). Both idle unless
``global.networkInfraType`` is ``aci``. The external-contract check is not here: it serves API
requests and so runs on every instance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from netmaster.aci.client import DEFAULT_URL, AciGwClient
from netmaster.aci.reconciler import AciReconciler, RetryPolicy
from netmaster.aci.tenants import TenantImporter
from netmaster.objects.service import ObjectService
from netmaster.store.base import Store

log = logging.getLogger("netmaster.aci")


@dataclass
class AciSettings:
    gw_url: str = DEFAULT_URL
    gw_token: str | None = None
    tenant_sync_interval: float = 30.0
    retry_max: float = 30.0
    retry_initial: float = 0.5
    debounce: float = 0.05
    drift_interval: float = 2.0  # how often aci-gw's drift repairs are read into Oper.aciSync


class AciController:
    def __init__(self, store: Store, objects: ObjectService, client: AciGwClient, settings: AciSettings) -> None:
        self.reconciler = AciReconciler(
            store,
            client,
            retry=RetryPolicy(settings.retry_initial, settings.retry_max),
            debounce=settings.debounce,
            drift_interval=settings.drift_interval,
            index=objects.index,
        )
        self.importer = TenantImporter(store, objects, client, settings.tenant_sync_interval)
        self.url = settings.gw_url

    async def start(self) -> None:
        log.info("ACI reconciler and tenant importer starting (aci-gw %s)", self.url)
        await self.reconciler.start()
        await self.importer.start()

    async def stop(self) -> None:
        await self.importer.stop()
        await self.reconciler.stop()
        log.info("ACI reconciler and tenant importer stopped")
