"""The Kubernetes adapter (``contiv-k8s-adapter``): what it sends netmaster, and how its list + watch
loop keeps netmaster equal to the API server.

What is real here: netmaster (a real process), the client library's models and exception types
(lightkube), the command's startup checks. What is not: an API server. None can run on this machine
(no kube-apiserver in the reachable registries), so the reconcile is driven through its entry points
with objects as the API server sends them (built as lightkube models and serialised by the library),
and the loop's edge cases (a dropped watch, 410 Gone, netmaster down mid-event) through a scripted
stand-in for the library's list and watch calls. The real watch runs only against an API server named
by ``CONTIV_TEST_KUBECONFIG`` (``test_live_api_server``), skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import yaml
from lightkube import ApiError, AsyncClient, KubeConfig, codecs
from lightkube.models.meta_v1 import Status

from contiv_api.backoff import Backoff
from contiv_api.k8s_netpol import NetworkPolicy as ParsedPolicy
from contiv_api.netmaster_client import NetmasterClient, NetmasterUnavailableError
from netmaster.kubernetes.adapter.cli import run_informers, serve_metrics
from netmaster.kubernetes.adapter.informer import ResourceGone, ResourceInformer, SourceError
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.reconcile import Reconciler
from netmaster.kubernetes.adapter.source import LightkubeSource, as_dict, source_errors
from netmaster.kubernetes.adapter.translate import NAMESPACES, NETWORK_POLICIES, PODS, RESOURCES, Resource, desired
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port
from testbed.waiting import eventually, until

CASES = Path(__file__).with_name("netpol_cases.yaml")
TENANT = "k8s"


def model(doc: dict[str, Any]) -> dict[str, Any]:
    """*doc* through the library's model and back: what the source hands the reconciler."""
    return as_dict(codecs.from_dict(doc))


def ns(name: str, rv: str = "1", **labels: str) -> dict[str, Any]:
    return model({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": name, "resourceVersion": rv, "labels": labels}})


def pod(namespace: str, name: str, rv: str = "1", *, annotations: dict[str, str] | None = None,
        host_network: bool = False, phase: str = "Running", **labels: str) -> dict[str, Any]:
    return model({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, "labels": labels,
                               "annotations": annotations or {}},
                  "spec": {"containers": [{"name": "c", "image": "busybox"}], "hostNetwork": host_network},
                  "status": {"phase": phase}})


def policy(namespace: str, name: str, spec: dict[str, Any], rv: str = "1") -> dict[str, Any]:
    return model({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, "spec": spec})


DENY = {"podSelector": {}, "policyTypes": ["Ingress"]}
IPV6 = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]}  # netmaster: IPv4 only
ALLOW_B = {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"],
           "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": 80}]}]}


# -- translation: the library's models -> what netmaster takes ------------------------------------------


def upstream_manifests() -> list[dict[str, Any]]:
    """Every manifest of the upstream truth tables, addresses filled in."""
    text = re.sub(r"\{ip:[^}]+\}", "10.20.30.40", CASES.read_text())
    return [m for case in yaml.safe_load(text) for step in case["steps"] for m in step.get("apply", [])]


def test_every_upstream_policy_survives_the_library_and_the_translation() -> None:
    manifests = upstream_manifests()
    assert len(manifests) > 50
    for doc in manifests:
        resource = {"NetworkPolicy": NETWORK_POLICIES, "Namespace": NAMESPACES, "Pod": PODS}[doc["kind"]]
        want = desired(resource, model(doc), "t")
        assert want is not None
        meta = doc["metadata"]
        assert want.key == ":".join(p for p in ("t", meta.get("namespace", "default") if resource.namespaced
                                                 else None, meta["name"]) if p)
        if resource is NETWORK_POLICIES:  # the same policy netctl apply -f would store, to the agents' parser
            assert ParsedPolicy.parse_spec("x", "p", want.manifest["spec"]) == \
                ParsedPolicy.parse_spec("x", "p", doc["spec"])
        else:
            assert want.manifest["metadata"]["labels"] == meta.get("labels", {})


def test_pods_outside_the_tenant_and_on_the_host_network_are_left_out() -> None:
    running = desired(PODS, pod("x", "a", pod="a"), "t")
    assert running is not None
    assert desired(PODS, pod("x", "a", annotations={"io.contiv.tenant": "t"}), "t") is not None
    assert desired(PODS, pod("x", "a", annotations={"io.contiv.tenant": "other"}), "t") is None
    assert desired(PODS, pod("kube-system", "proxy", host_network=True), "t") is None
    done = desired(PODS, pod("x", "a", phase="Failed", pod="a"), "t")
    assert done is not None
    assert running.fingerprint == done.fingerprint
    assert running.manifest == {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "a", "namespace": "x", "labels": {"pod": "a"}}}


def test_library_errors_become_gone_and_source_errors() -> None:
    with pytest.raises(ResourceGone), source_errors(PODS, "watch"):
        raise ApiError(status=Status(code=410, message="too old resource version: 5 (99)"))
    with pytest.raises(SourceError, match="403"), source_errors(PODS, "list"):
        raise ApiError(status=Status(code=403, message="pods is forbidden"))
    with pytest.raises(SourceError, match="ConnectError"), source_errors(PODS, "list"):
        raise httpx2.ConnectError("refused")


async def test_a_silent_watch_connection_ends_and_a_silent_list_fails(tmp_path: Path) -> None:
    """The library reads a watch without a timeout; a peer that accepted the connection and went
    silent (a half-open connection after an API server host died) must not stall the loop forever."""
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = KubeConfig.from_file(kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{silent.getsockname()[1]}"))
        client = AsyncClient(config.get(), timeout=httpx2.Timeout(1.0), trust_env=False)
        source = LightkubeSource(client, watch_seconds=1, idle_margin=0.5)
        try:
            started = asyncio.get_running_loop().time()
            assert [event async for event in source.watch(PODS, "42")] == []
            assert asyncio.get_running_loop().time() - started >= 1.5
            with pytest.raises(SourceError, match="list pods: ReadTimeout"):
                await source.list(PODS)
        finally:
            await source.close()


# -- the reconcile against a real netmaster ----------------------------------------------------------------


@pytest.fixture(scope="module")
def nm() -> Iterator[NetmasterProcess]:
    with NetmasterProcess.start("memory://") as proc:
        for tenant in (TENANT, "other"):
            httpx.post(f"{proc.url}/api/v1/tenants/{tenant}/", json={"tenantName": tenant}, timeout=10
                       ).raise_for_status()
        yield proc


@pytest.fixture
def http(nm: NetmasterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nm.url, timeout=10) as client:
        for plural in ("networkpolicies", "pods", "namespaces"):  # each test starts with none
            for record in client.get(f"/api/v1/kubernetes/{plural}/").json():
                client.delete(f"/api/v1/kubernetes/{plural}/{record['key']}/").raise_for_status()
        yield client


@pytest.fixture
async def reconciler(nm: NetmasterProcess, http: httpx.Client) -> AsyncIterator[Reconciler]:
    async with NetmasterClient(nm.url, retry_for=5) as client:
        yield Reconciler(client, TENANT, AdapterMetrics())


async def held(client: NetmasterClient, resource: Resource) -> dict[str, Any]:
    """netmaster's objects of *resource*, by key: what it holds, not what the adapter remembers."""
    return {r.pop("key"): r for r in await client.request("GET", f"/api/v1/kubernetes/{resource.plural}/")}


def writes(rec: Reconciler, resource: Resource, op: str) -> float:
    return rec.metrics.registry.get_sample_value("contiv_k8s_adapter_netmaster_writes_total",
                                                 {"resource": resource.plural, "op": op}) or 0.0


async def test_namespaces_are_created_updated_and_deleted(reconciler: Reconciler, http: httpx.Client) -> None:
    await reconciler.handle(NAMESPACES, "ADDED", ns("x", team="a"))
    assert (await held(reconciler.client, NAMESPACES))[f"{TENANT}:x"]["labels"] == {"team": "a"}
    await reconciler.handle(NAMESPACES, "MODIFIED", ns("x", "2", team="b"))
    assert (await held(reconciler.client, NAMESPACES))[f"{TENANT}:x"]["labels"] == {"team": "b"}
    await reconciler.handle(NAMESPACES, "DELETED", ns("x", "3", team="b"))
    assert await held(reconciler.client, NAMESPACES) == {}


async def test_pods_carry_their_labels_and_a_status_change_costs_no_call(reconciler: Reconciler,
                                                                          http: httpx.Client) -> None:
    await reconciler.handle(PODS, "ADDED", pod("x", "a", phase="Pending", pod="a"))
    assert (await held(reconciler.client, PODS))[f"{TENANT}:x:a"] == {
        "tenantName": TENANT, "namespace": "x", "name": "a", "labels": {"pod": "a"}}
    await reconciler.handle(PODS, "MODIFIED", pod("x", "a", "2", phase="Running", pod="a"))
    assert writes(reconciler, PODS, "apply") == 1
    await reconciler.handle(PODS, "MODIFIED", pod("x", "a", "3", pod="a", tier="web"))
    assert (await held(reconciler.client, PODS))[f"{TENANT}:x:a"]["labels"] == {"pod": "a", "tier": "web"}
    # annotated into another tenant: its labels go, as if deleted from this tenant
    await reconciler.handle(PODS, "MODIFIED", pod("x", "a", "4", annotations={"io.contiv.tenant": "other"}))
    assert await held(reconciler.client, PODS) == {}
    await reconciler.handle(PODS, "ADDED", pod("x", "b", pod="b"))
    await reconciler.handle(PODS, "DELETED", pod("x", "b", "5", pod="b"))
    assert await held(reconciler.client, PODS) == {}


async def test_policies_are_created_updated_and_deleted(reconciler: Reconciler, http: httpx.Client) -> None:
    await reconciler.handle(NETWORK_POLICIES, "ADDED", policy("x", "p", DENY))
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:p"]["spec"] == DENY
    await reconciler.handle(NETWORK_POLICIES, "MODIFIED", policy("x", "p", ALLOW_B, "2"))
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:p"]["spec"] == ALLOW_B
    await reconciler.handle(NETWORK_POLICIES, "DELETED", policy("x", "p", ALLOW_B, "3"))
    assert await held(reconciler.client, NETWORK_POLICIES) == {}


async def test_a_relist_applies_the_differences_and_drops_what_the_api_server_lost(
        reconciler: Reconciler, http: httpx.Client) -> None:
    for name in ("keep", "change", "gone"):
        await reconciler.handle(NETWORK_POLICIES, "ADDED", policy("x", name, DENY))
    # by hand in the adapter's tenant (the API server is the truth there), and in another tenant
    for tenant, name in ((TENANT, "by-hand"), ("other", "elsewhere")):
        await reconciler.client.request("POST", f"/api/v1/kubernetes/?tenant={tenant}", policy("x", name, DENY))
    applies = writes(reconciler, NETWORK_POLICIES, "apply")
    await reconciler.relist(NETWORK_POLICIES, [policy("x", "keep", DENY), policy("x", "change", ALLOW_B),
                                               policy("y", "new", DENY)])
    now = await held(reconciler.client, NETWORK_POLICIES)
    assert sorted(now) == [f"{TENANT}:x:change", f"{TENANT}:x:keep", f"{TENANT}:y:new", "other:x:elsewhere"]
    assert now[f"{TENANT}:x:change"]["spec"] == ALLOW_B
    assert writes(reconciler, NETWORK_POLICIES, "apply") == applies + 2  # "keep" was left alone
    assert reconciler.metrics.registry.get_sample_value("contiv_k8s_adapter_objects",
                                                        {"resource": "networkpolicies"}) == 3
    server = serve_metrics(reconciler.metrics, f"127.0.0.1:{free_port()}")  # what Prometheus scrapes
    try:
        async with httpx.AsyncClient() as scraper:
            text = (await scraper.get(f"http://127.0.0.1:{server.server_port}/metrics")).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'contiv_k8s_adapter_netmaster_writes_total{op="delete",resource="networkpolicies"} 2.0' in text
    assert 'contiv_k8s_adapter_last_sync_timestamp_seconds{resource="networkpolicies"}' in text


async def test_an_object_netmaster_refuses_is_logged_counted_and_the_rest_goes_on(
        reconciler: Reconciler, http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    await reconciler.handle(NETWORK_POLICIES, "ADDED", policy("x", "p", DENY))
    # Kubernetes takes IPv6 blocks; netmaster (IPv4 only) refuses them and keeps what it had
    await reconciler.handle(NETWORK_POLICIES, "MODIFIED", policy("x", "p", IPV6, "2"))
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:p"]["spec"] == DENY
    assert "IPv4 only" in reconciler.refused["networkpolicies"][f"{TENANT}:x:p"]
    assert any("netmaster refused NetworkPolicy k8s:x:p" in r.getMessage() for r in caplog.records)
    assert reconciler.metrics.registry.get_sample_value(
        "contiv_k8s_adapter_errors_total", {"resource": "networkpolicies", "kind": "refused"}) == 1
    await reconciler.handle(NETWORK_POLICIES, "ADDED", policy("x", "q", ALLOW_B))
    assert f"{TENANT}:x:q" in await held(reconciler.client, NETWORK_POLICIES)
    # fixed in the API server: applied, no longer refused
    await reconciler.handle(NETWORK_POLICIES, "MODIFIED", policy("x", "p", ALLOW_B, "3"))
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:p"]["spec"] == ALLOW_B
    assert reconciler.refused["networkpolicies"] == {}
    # a tenant netmaster does not have: refused the same way
    async with NetmasterClient(reconciler.client.url, retry_for=5) as client:
        lost = Reconciler(client, "no-such-tenant", AdapterMetrics())
        await lost.handle(NAMESPACES, "ADDED", ns("x"))
        assert lost.refused["namespaces"] == {"no-such-tenant:x": "tenant no-such-tenant not found"}


# -- the list + watch loop ---------------------------------------------------------------------------------


class ScriptedSource:
    """Stands in for the library's list and watch calls: the loop's edge cases need an API server that
    drops watches, answers 410 and keeps its history on cue. ``change`` records a change under the next
    resourceVersion; a watch serves the changes after its version (410 when they are compacted away),
    then ends as ``endings`` says ("closed", "error"), or stays open with the changes to come when it
    says nothing."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.version = 0
        self.compacted = 0  # changes up to this version are no longer kept
        self.endings: list[str] = []
        self.lists: list[str] = []  # the resourceVersion of each list
        self.watches: list[str] = []  # the resourceVersion each watch started from
        self._changed = asyncio.Event()

    def change(self, event_type: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        if event_type == "DELETED":
            self.objects.pop(key)
        else:
            self.objects[key] = obj
        self.history.append((self.version, event_type, obj))
        self._changed.set()

    async def list(self, resource: Resource) -> tuple[list[dict[str, Any]], str]:
        self.lists.append(str(self.version))
        return list(self.objects.values()), str(self.version)

    async def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watches.append(resource_version)
        if int(resource_version) < self.compacted:
            raise ResourceGone(f"too old resource version: {resource_version} ({self.compacted})")
        ending = self.endings.pop(0) if self.endings else "open"
        sent = int(resource_version)
        while True:
            self._changed.clear()
            for version, event_type, obj in [h for h in self.history if h[0] > sent]:
                sent = version
                yield event_type, obj
            if ending == "error":
                raise SourceError(f"watch {resource.plural}: ReadError")
            if ending == "closed":
                return
            if not any(h[0] > sent for h in self.history):
                await self._changed.wait()  # open: the changes to come


async def test_the_loop_resumes_from_its_version_and_relists_after_gone(reconciler: Reconciler,
                                                                       http: httpx.Client) -> None:
    src = ScriptedSource()
    informer = ResourceInformer(NETWORK_POLICIES, src, reconciler, reconciler.metrics)
    src.change("ADDED", policy("x", "a", DENY))
    src.endings.append("closed")
    await informer.run_once()
    assert (src.lists, src.watches, informer.resource_version) == (["1"], ["1"], "1")  # watch from the list
    assert informer.synced.is_set()
    assert sorted(await held(reconciler.client, NETWORK_POLICIES)) == [f"{TENANT}:x:a"]
    # the API server closes a watch: the next one resumes from the last event, no list, no history replayed
    src.change("ADDED", policy("x", "b", DENY))
    src.change("MODIFIED", policy("x", "a", ALLOW_B))
    src.endings.append("closed")
    await informer.run_once()
    assert (src.lists, src.watches[-1], informer.resource_version) == (["1"], "1", "3")
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:a"]["spec"] == ALLOW_B
    # an object netmaster refuses, between two it takes: logged and counted, the watch goes on past it
    src.change("ADDED", policy("x", "v6", IPV6))
    src.change("MODIFIED", policy("x", "b", ALLOW_B))
    src.endings.append("closed")
    await informer.run_once()
    assert informer.resource_version == "5"
    assert (await held(reconciler.client, NETWORK_POLICIES))[f"{TENANT}:x:b"]["spec"] == ALLOW_B
    assert list(reconciler.refused["networkpolicies"]) == [f"{TENANT}:x:v6"]
    src.change("DELETED", policy("x", "v6", DENY))
    # a watch that fails after an event: the event counts, the next watch starts after it
    src.change("DELETED", policy("x", "a", ALLOW_B))
    src.endings.append("error")
    with pytest.raises(SourceError):
        await informer.run_once()
    assert informer.resource_version == "7"
    assert sorted(await held(reconciler.client, NETWORK_POLICIES)) == [f"{TENANT}:x:b"]
    assert reconciler.refused["networkpolicies"] == {}
    applies = writes(reconciler, NETWORK_POLICIES, "apply")
    src.endings.append("closed")
    await informer.run_once()
    assert (src.lists, src.watches[-1]) == (["1"], "7")
    assert writes(reconciler, NETWORK_POLICIES, "apply") == applies
    # while the watch was away, "b" was deleted and "c" created, and the history compacted: 410, re-list
    src.change("DELETED", policy("x", "b", DENY))
    src.change("ADDED", policy("x", "c", DENY))
    src.compacted = src.version
    await informer.run_once()
    assert informer.resource_version is None
    src.endings.append("closed")
    await informer.run_once()
    assert (src.lists[-1], src.watches[-1], informer.resource_version) == ("9", "9", "9")
    assert sorted(await held(reconciler.client, NETWORK_POLICIES)) == [f"{TENANT}:x:c"]  # "b" dropped by the re-list
    relists = {reason: reconciler.metrics.registry.get_sample_value(
        "contiv_k8s_adapter_relists_total", {"resource": "networkpolicies", "reason": reason})
        for reason in ("start", "gone")}
    assert relists == {"start": 1, "gone": 1}


class PerResource:
    """One ScriptedSource per resource, as the command's three informers share one source."""

    def __init__(self) -> None:
        self.sources = {r: ScriptedSource() for r in RESOURCES}
        self.lists: list[str] = []  # resources in the order they were listed

    async def list(self, resource: Resource) -> tuple[list[dict[str, Any]], str]:
        self.lists.append(resource.plural)
        return await self.sources[resource].list(resource)

    def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        return self.sources[resource].watch(resource, resource_version)


async def test_the_command_syncs_labels_before_policies(reconciler: Reconciler) -> None:
    src = PerResource()
    src.sources[NAMESPACES].change("ADDED", ns("x", team="a"))
    src.sources[PODS].change("ADDED", pod("x", "a", pod="a"))
    src.sources[NETWORK_POLICIES].change("ADDED", policy("x", "p", DENY))
    task = asyncio.create_task(run_informers(src, reconciler, reconciler.metrics))
    try:
        await until(lambda: all(reconciler.held(r) for r in RESOURCES), within=30, what="every resource synced")
        src.sources[PODS].change("MODIFIED", pod("x", "a", pod="b"))  # the watches go on
        await until(lambda: reconciler.metrics.registry.get_sample_value(
            "contiv_k8s_adapter_events_total", {"resource": "pods", "type": "MODIFIED"}), within=30,
            what="a pod event")
    finally:
        task.cancel()
    assert src.lists[-1] == "networkpolicies"
    assert sorted(src.lists) == ["namespaces", "networkpolicies", "pods"]
    assert (await held(reconciler.client, PODS))[f"{TENANT}:x:a"]["labels"] == {"pod": "b"}


async def test_an_event_netmaster_missed_comes_again(tmp_path: Path) -> None:
    """netmaster down mid-watch: the event is not taken as applied, and the loop (with backoff)
    re-opens the watch from before it until netmaster is back and takes it."""
    nm = NetmasterProcess.spawn(f"sqlite:///{tmp_path}/nm.db")
    try:
        async with NetmasterClient(nm.url, retry_for=0.5) as client:
            await client.request("POST", f"/api/v1/tenants/{TENANT}/", {"tenantName": TENANT})
            rec = Reconciler(client, TENANT, AdapterMetrics())
            src = ScriptedSource()
            informer = ResourceInformer(NAMESPACES, src, rec, rec.metrics, backoff=Backoff(0.1, 1.0))
            src.change("ADDED", ns("x"))
            src.endings.append("closed")
            await informer.run_once()
            assert informer.resource_version == "1"
            nm.stop()
            src.change("MODIFIED", ns("x", team="a"))
            src.endings.append("closed")
            with pytest.raises(NetmasterUnavailableError):
                await informer.run_once()
            assert informer.resource_version == "1"
            task = asyncio.create_task(informer.run())
            try:
                await asyncio.sleep(1.0)
                assert informer.resource_version == "1"
                assert not task.done()
                nm.run()
                await until(lambda: informer.resource_version == "2", within=60, what="the event applied")
                assert (await held(client, NAMESPACES))[f"{TENANT}:x"]["labels"] == {"team": "a"}
                assert src.lists == ["1"]  # only the first pass listed
            finally:
                task.cancel()
    finally:
        nm.stop()


# -- the command ---------------------------------------------------------------------------------------


def adapter(*args: str, env: dict[str, str] | None = None, pre: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{pre}import sys; from netmaster.kubernetes.adapter.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "--metrics-listen", "", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # JSON logs: retries
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("contiv-k8s-adapter: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def test_help_explains() -> None:
    result = subprocess.run([sys.executable, "-m", "netmaster.kubernetes.adapter", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for word in ("NetworkPolicies", "--kubeconfig", "--netmaster-token", "--tenant", "--metrics-listen", "RBAC"):
        assert word in result.stdout


def test_startup_errors_are_one_line(nm: NetmasterProcess, tmp_path: Path) -> None:
    assert "not found" in one_line_error(adapter("--kubeconfig", str(tmp_path / "missing")))
    (tmp_path / "bad").write_text("clusters: [")
    assert "kubeconfig" in one_line_error(adapter("--kubeconfig", str(tmp_path / "bad")))
    no_context = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1")
    assert "Context 'nope' not found" in one_line_error(adapter("--kubeconfig", str(no_context), "--context", "nope"))
    # no in-cluster account, no file: what a pod without its service account sees
    assert "kubeconfig" in one_line_error(adapter(env={"KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)}))
    # the library missing (installed without the k8s extra)
    missing = one_line_error(adapter("--kubeconfig", str(no_context), pre="sys_modules = __import__('sys').modules; "
                                     "sys_modules['lightkube'] = None; "))
    assert "pip install 'contiv[k8s]'" in missing
    dead = kubeconfig(tmp_path / "dead", f"https://127.0.0.1:{free_port()}")
    line = one_line_error(adapter("--kubeconfig", str(dead), "--netmaster", nm.url, "--tenant", TENANT,
                                  "--startup-timeout", "5"))
    assert "API server https://127.0.0.1:" in line
    assert "ConnectError" in line
    line = one_line_error(adapter("--kubeconfig", str(dead), "--netmaster", nm.url, "--tenant", "absent"))
    assert "tenant absent not found in netmaster" in line
    line = one_line_error(adapter("--kubeconfig", str(dead), "--netmaster", f"http://127.0.0.1:{free_port()}",
                                  "--startup-timeout", "1"))
    assert "gave up" in line


def test_a_token_protected_netmaster(tmp_path: Path) -> None:
    dead = kubeconfig(tmp_path / "dead", f"https://127.0.0.1:{free_port()}")
    with NetmasterProcess.start("memory://", args=["--token", "s3cret"]) as nm:
        line = one_line_error(adapter("--kubeconfig", str(dead), "--netmaster", nm.url))
        assert "refused the token" in line
        assert "s3cret" not in line
        # with the token (from the environment) it gets past netmaster, to the (absent) API server
        line = one_line_error(adapter("--kubeconfig", str(dead), "--netmaster", nm.url, "--startup-timeout", "5",
                                      env={"CONTIV_NETMASTER_TOKEN": "s3cret"}))
        assert "API server" in line
        asyncio.run(apply_with_token(nm.url))


async def apply_with_token(url: str) -> None:
    """The reconcile's calls carry the token too."""
    async with NetmasterClient(url, token="s3cret", retry_for=5) as client:
        await client.request("POST", f"/api/v1/tenants/{TENANT}/", {"tenantName": TENANT})
        rec = Reconciler(client, TENANT, AdapterMetrics())
        await rec.relist(NAMESPACES, [ns("x", team="a")])
        assert (await held(client, NAMESPACES))[f"{TENANT}:x"]["labels"] == {"team": "a"}
        assert rec.refused["namespaces"] == {}


# -- a live API server (only when one is named) -----------------------------------------------------------


LIVE = os.environ.get("CONTIV_TEST_KUBECONFIG")


def held_now(http: httpx.Client, resource: Resource) -> dict[str, Any]:
    return {r.pop("key"): r for r in http.get(f"/api/v1/kubernetes/{resource.plural}/").json()}


@pytest.mark.skipif(not LIVE, reason="no API server can run here: set CONTIV_TEST_KUBECONFIG to a cluster's "
                                     "kubeconfig (the test creates and deletes a namespace contiv-adapter-test)")
def test_live_api_server(nm: NetmasterProcess, http: httpx.Client, tmp_path: Path) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.resources.core_v1 import Namespace, Pod
    from lightkube.resources.networking_v1 import NetworkPolicy

    assert LIVE
    kube = Client(KubeConfig.from_file(LIVE).get(), trust_env=False)
    name = "contiv-adapter-test"
    metrics = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "netmaster.kubernetes.adapter", "--kubeconfig", LIVE,
                             "--netmaster", nm.url, "--tenant", TENANT, "--metrics-listen", metrics],
                            stderr=(tmp_path / "adapter.log").open("w"))
    try:
        kube.create(codecs.from_dict({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": name, "labels": {"team": "a"}}}))
        kube.create(codecs.from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "a", "namespace": name, "labels": {"pod": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
        kube.create(codecs.from_dict({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                      "metadata": {"name": "deny", "namespace": name}, "spec": DENY}))
        eventually(lambda: f"{TENANT}:{name}:deny" in held_now(http, NETWORK_POLICIES)
                   and held_now(http, PODS).get(f"{TENANT}:{name}:a", {}).get("labels") == {"pod": "a"}
                   and held_now(http, NAMESPACES).get(f"{TENANT}:{name}", {}).get("labels", {}).get("team") == "a",
                   timeout=60)
        kube.delete(NetworkPolicy, "deny", namespace=name)
        eventually(lambda: f"{TENANT}:{name}:deny" not in held_now(http, NETWORK_POLICIES), timeout=60)
        kube.delete(Pod, "a", namespace=name, grace_period=0)
        eventually(lambda: f"{TENANT}:{name}:a" not in held_now(http, PODS), timeout=120)
        text = httpx.get(f"http://{metrics}/metrics", timeout=10).text
        assert 'contiv_k8s_adapter_relists_total{reason="start",resource="networkpolicies"} 1.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        kube.delete(Namespace, name)
