"""netmaster's Kubernetes API and ``netctl apply -f``: manifests are checked with the agents' parser,
a bad one is a 400 naming the problem and stores nothing, an unknown tenant a 404; objects are
listed, read and deleted by key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.netmaster import NetmasterProcess

POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


@pytest.fixture(scope="module")
def nm() -> Iterator[NetmasterProcess]:
    with NetmasterProcess.start("memory://") as proc:
        yield proc


@pytest.fixture
def http(nm: NetmasterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nm.url, timeout=10) as client:
        yield client


def test_apply_list_get_delete(http: httpx.Client) -> None:
    resp = http.post("/api/v1/kubernetes/", json=POLICY)
    assert resp.status_code == 200, resp.text
    assert resp.json()["key"] == "default:x:deny"
    listed = http.get("/api/v1/kubernetes/networkpolicies/").json()
    assert [(p["key"], p["spec"]) for p in listed] == [("default:x:deny", POLICY["spec"])]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "y", "labels": {"team": "b"}}}
    assert http.post("/api/v1/kubernetes/", json=ns).status_code == 200
    assert http.get("/api/v1/kubernetes/namespaces/default:y/").json()["labels"] == {"team": "b"}
    assert http.delete("/api/v1/kubernetes/networkpolicies/default:x:deny/").status_code == 200
    assert http.get("/api/v1/kubernetes/networkpolicies/").json() == []
    assert http.delete("/api/v1/kubernetes/networkpolicies/default:x:deny/").status_code == 404


def test_bad_manifest_is_refused_and_nothing_is_stored(http: httpx.Client) -> None:
    bad = {**POLICY, "metadata": {"name": "bad", "namespace": "x"},
           "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}}
    resp = http.post("/api/v1/kubernetes/", json=bad)
    assert resp.status_code == 400
    assert "spec.ingress[0].ports[0].port must be 1-65535" in resp.json()["error"]
    assert http.get("/api/v1/kubernetes/networkpolicies/default:x:bad/").status_code == 404
    resp = http.post("/api/v1/kubernetes/", params={"tenant": "nope"}, json=POLICY)
    assert (resp.status_code, resp.json()["error"]) == (404, "tenant nope not found")
    assert http.get("/api/v1/kubernetes/widgets/").status_code == 404


def test_netctl_apply_and_delete_file(nm: NetmasterProcess, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: front}}}]
      ports: [{port: 8080}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: back}}
""")

    def netctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", nm.url, *args],
                              capture_output=True, text=True, timeout=60)

    out = netctl("apply", "-f", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["networkpolicies/default:shop:web configured",
                                       "namespaces/default:shop configured"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text() + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    out = netctl("delete", "-f", str(bad))
    assert out.returncode != 0
    assert "document 3: unsupported object v1/Service" in out.stderr
    with httpx.Client(base_url=nm.url) as http:
        assert len(http.get("/api/v1/kubernetes/networkpolicies/").json()) == 1  # the bad file changed nothing
    assert netctl("delete", "-f", str(path)).returncode == 0
    with httpx.Client(base_url=nm.url) as http:
        assert http.get("/api/v1/kubernetes/networkpolicies/").json() == []
