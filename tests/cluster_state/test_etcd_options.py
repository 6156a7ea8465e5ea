"""Parsing of etcd store URLs: endpoints, TLS files, credentials, and keeping the password out of logs."""

from __future__ import annotations

import pytest

from netmaster.store import open_store
from netmaster.store.base import StoreError
from netmaster.store.etcd import EtcdStore
from netmaster.store.etcd_options import parse_etcd_url, redact_url


def test_several_endpoints_with_default_port() -> None:
    opts = parse_etcd_url("etcd://h1:2379,h2,[::1]:32379, h3:1 ")
    assert opts.endpoints == ("h1:2379", "h2:2379", "[::1]:32379", "h3:1")
    assert not opts.tls
    assert opts.username is None


def test_several_endpoints_with_ipv6_open_a_store() -> None:
    """Text before a bracket in the host part: Pythons with the CVE-2024-11168 fix (Debian's among them)
    refuse that in urlsplit, so the store URL is split by hand (netmaster once crashed on it there)."""
    store = open_store("etcd://h1,[::1]:32379")
    assert isinstance(store, EtcdStore)
    assert store.options.endpoints == ("h1:2379", "[::1]:32379")


def test_tls_files_and_credentials_in_userinfo() -> None:
    opts = parse_etcd_url("etcds://contiv:p%40ss@h1:2379?ca=/c/ca.pem&cert=/c/c.pem&key=/c/c.key&timeout=3")
    assert opts.tls
    assert (opts.ca_file, opts.cert_file, opts.key_file) == ("/c/ca.pem", "/c/c.pem", "/c/c.key")
    assert (opts.username, opts.password) == ("contiv", "p@ss")
    assert opts.timeout == 3.0


def test_credentials_in_query_and_password_never_shown() -> None:
    opts = parse_etcd_url("etcd://h1?username=u&password=topsecret&history=0")
    assert (opts.username, opts.password, opts.history) == ("u", "topsecret", 0)
    assert "topsecret" not in repr(opts)
    assert "topsecret" not in opts.describe()
    assert "topsecret" not in repr(EtcdStore(opts))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("etcd://", "no endpoint"),
        ("etcd://h1?ca=/x", "etcds://"),
        ("etcds://h1?cert=/x", "both cert= and key="),
        ("etcd://u@h1", "username and a password"),
        ("etcd://h1?colour=blue", "unknown etcd store URL option"),
        ("etcd://h1:port", "port"),
        ("etcd://h1/prefix", "no path"),
        ("etcd://h1?timeout=soon", "invalid etcd store URL option"),
    ],
)
def test_invalid_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_missing_tls_file_is_reported() -> None:
    with pytest.raises(StoreError, match="cannot read etcd TLS CA"):
        open_store("etcds://h1?ca=/nonexistent/ca.pem")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("etcd://u:pw@h1:2379,h2:2379?timeout=3", "etcd://u@h1:2379,h2:2379?timeout=3"),
        ("etcd://u:pw@h1,[::1]:2379", "etcd://u@h1,[::1]:2379"),  # refused by urlsplit on newer Pythons
        ("etcds://h1?username=u&password=pw&ca=/x", "etcds://h1?username=u&password=***&ca=/x"),
        ("sqlite:///var/lib/contiv/netmaster.db", "sqlite:///var/lib/contiv/netmaster.db"),
    ],
)
def test_redacted_url_shows_no_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
