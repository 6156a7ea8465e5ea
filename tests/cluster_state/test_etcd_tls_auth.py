"""etcds:// with a CA, a client certificate and username/password, against etcd with TLS and auth on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from netmaster.store import open_store
from netmaster.store.base import StoreError, StoreUnavailableError
from testbed.etcd import EtcdCluster
from tests.cluster_state.tls_certs import TlsFiles, make_tls_files

PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("etcd-tls")
    tls = make_tls_files(base / "pki")
    cluster = EtcdCluster(
        base,
        1,
        scheme="https",
        extra_args=[
            f"--cert-file={tls.server_cert}",
            f"--key-file={tls.server_key}",
            f"--trusted-ca-file={tls.ca}",
            "--client-cert-auth",
        ],
    )
    # Peer traffic stays plain http on 127.0.0.1; only the client port is TLS.
    cluster.start()
    cluster.etcdctl("user", "add", f"root:{PASSWORD}")
    cluster.etcdctl("auth", "enable")
    yield cluster, tls
    cluster.stop()


def _url(cluster: EtcdCluster, tls: TlsFiles, user: str = "root", password: str = PASSWORD) -> str:
    return (
        f"etcds://{user}:{password}@{cluster.endpoints[0]}"
        f"?ca={tls.ca}&cert={tls.client_cert}&key={tls.client_key}&timeout=2&connect_timeout=1"
    )


async def test_tls_and_password(secure_etcd) -> None:
    cluster, tls = secure_etcd
    store = open_store(_url(cluster, tls))
    try:
        assert PASSWORD not in repr(store)
        rev = await store.put("/s/a", "1")
        assert (await store.get("/s/a")).value == "1"
        lease = await store.lease_grant(5)
        await store.lease_keepalive(lease)
        events = []
        async for ev in store.watch("/s/", rev - 1):
            events.append(ev)
            break
        assert events[0].key == "/s/a"
    finally:
        await store.close()


async def test_wrong_password_is_a_clear_error_without_the_password(secure_etcd, caplog) -> None:
    cluster, tls = secure_etcd
    caplog.set_level(logging.DEBUG)
    store = open_store(_url(cluster, tls, password="wrong-guess"))
    try:
        with pytest.raises(StoreError) as info:
            await store.get("/s/a")
        assert "authentication" in str(info.value)
        assert "wrong-guess" not in str(info.value)
        assert "wrong-guess" not in caplog.text
    finally:
        await store.close()


async def test_missing_client_certificate_is_unavailable_with_reason(secure_etcd) -> None:
    cluster, tls = secure_etcd
    store = open_store(f"etcds://root:{PASSWORD}@{cluster.endpoints[0]}?ca={tls.ca}&timeout=2&connect_timeout=1")
    try:
        with pytest.raises(StoreUnavailableError) as info:
            await store.get("/s/a")
        assert cluster.endpoints[0] in str(info.value)
        assert PASSWORD not in str(info.value)
    finally:
        await store.close()


async def test_plain_client_against_tls_server_fails_promptly(secure_etcd, tmp_path: Path) -> None:
    cluster, _ = secure_etcd
    store = open_store(f"etcd://{cluster.endpoints[0]}?timeout=1&connect_timeout=0.5")
    try:
        with pytest.raises(StoreUnavailableError):
            await store.get("/s/a")
    finally:
        await store.close()
