"""Issue 5 acceptance: two netmasters on one etcd, many clients, small subnets until exhaustion.

Every address handed out must be unique, every failure past exhaustion a clean 409, and the counts
netmaster reports must match what the clients were given.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from contiv_api.netmaster_client import NetmasterClient, NetmasterError
from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess
from tests.cluster_state.follow import make_network

CLIENTS = 8
PER_CLIENT = 500
NETWORKS = {f"small{i}": f"10.{50 + i}.0.0/26" for i in range(4)}  # 4 x 62 usable (no gateway set)


@pytest.fixture
def netmasters(tmp_path: Path) -> Iterator[list[NetmasterProcess]]:
    shared_etcd().wipe()
    nms = [NetmasterProcess.spawn(shared_etcd().url, log_path=tmp_path / f"nm{i}.log") for i in range(2)]
    yield nms
    for nm in nms:
        nm.stop()


@pytest.mark.slow
async def test_no_duplicate_address_and_clean_exhaustion(netmasters: list[NetmasterProcess]) -> None:
    urls = [nm.url for nm in netmasters]
    async with NetmasterClient(urls[0]) as admin:
        for name, subnet in NETWORKS.items():
            await make_network(admin, "default", name, subnet)

    granted: list[tuple[str, str]] = []  # (network, ip)
    refusals: Counter[str] = Counter()

    async def client(n: int) -> None:
        # Half the clients talk to each netmaster; the networks are shared by all of them.
        async with NetmasterClient(urls[n % 2], retry_for=30) as c:
            for i in range(PER_CLIENT):
                network = list(NETWORKS)[(n + i) % len(NETWORKS)]
                try:
                    ep = await c.create_endpoint(f"c{n}-{i}", network=network, host=f"h{n}")
                except NetmasterError as exc:
                    refusals[f"{exc.status} {exc.message}"] += 1
                    continue
                granted.append((network, ep["ipAddress"]))

    await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(CLIENTS))), 600)

    assert len(granted) == len(set(granted)), "an address was handed out twice"
    per_network = Counter(net for net, _ in granted)
    async with NetmasterClient(urls[1]) as admin:
        for name, subnet in NETWORKS.items():
            usable = ipaddress.ip_network(subnet).num_addresses - 2  # network and broadcast
            assert per_network[name] == usable, f"{name}: {per_network[name]} granted of {usable}"
            oper = (await admin.request("GET", f"/api/v1/inspect/networks/default:{name}/"))["Oper"]
            assert oper["numEndpoints"] == usable
            assert oper["allocatedAddressesCount"] == usable
            assert oper["availableIPAddresses"] == ""
    assert sum(refusals.values()) == CLIENTS * PER_CLIENT - len(granted)
    assert all(m.startswith("409 ") and "exhaustion" in m for m in refusals), refusals
