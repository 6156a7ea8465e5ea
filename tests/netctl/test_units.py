"""Unit tests of netctl's pure parts: URL building, error decoding, table rendering, rule checks.

These need no server; everything that talks to netmaster is tested end to end in the other modules.
"""

from __future__ import annotations

import json

import click
import httpx
import pytest

from netmaster.cli.client import NetctlClient, normalize_base_url, object_path
from netmaster.cli.commands.netprofile import display_bandwidth
from netmaster.cli.commands.policy import check_rule_peers
from netmaster.cli.errors import ConnectionFailed, NetctlError, RestError
from netmaster.cli.output import format_cell, render_table
from testbed.netctl import parse_table


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:9999", "http://127.0.0.1:9999"),
        ("127.0.0.1:9999", "http://127.0.0.1:9999"),
        ("https://nm.example:443/", "https://nm.example:443"),
    ],
)
def test_base_url_accepts_host_port_and_urls(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


def test_object_paths_follow_contiv_routes() -> None:
    assert object_path("networks") == "/api/v1/networks/"
    assert object_path("networks", "default:net1") == "/api/v1/networks/default:net1/"
    assert object_path("rules", "t:p:1", inspect=True) == "/api/v1/inspect/rules/t:p:1/"
    # A slash or space in an endpoint id must not change the route shape.
    assert object_path("endpoints", "a/b c", inspect=True) == "/api/v1/inspect/endpoints/a%2Fb%20c/"


def _client_answering(status: int, body: bytes, content_type: str = "application/json") -> NetctlClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return NetctlClient("http://nm:1", transport=httpx.MockTransport(handler))


def test_error_body_json_message_is_used() -> None:
    with pytest.raises(RestError) as caught:
        _client_answering(409, json.dumps({"error": "Network has active endpoints"}).encode()).get("networks", "x")
    assert caught.value.status == 409
    assert caught.value.format_message() == "Network has active endpoints"
    assert caught.value.exit_code == 3


def test_plain_text_error_from_a_contiv_style_server_is_used() -> None:
    with pytest.raises(RestError) as caught:
        _client_answering(500, b"network not found\n", "text/plain").get("networks", "x")
    assert caught.value.format_message() == "network not found"


def test_empty_error_body_still_names_the_status() -> None:
    with pytest.raises(RestError, match="HTTP 502"):
        _client_answering(502, b"").list("networks")


def test_null_list_reads_as_empty() -> None:
    assert _client_answering(200, b"null").list("networks") == []


def test_transport_failure_names_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = NetctlClient("nm:1", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectionFailed) as caught:
        client.list("tenants")
    assert "http://nm:1" in caught.value.format_message()
    assert caught.value.exit_code == 1


def test_token_is_sent_as_bearer() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=[])

    NetctlClient("nm:1", token="s3cret", transport=httpx.MockTransport(handler)).list("tenants")
    NetctlClient("nm:1", transport=httpx.MockTransport(handler)).list("tenants")
    assert seen == ["Bearer s3cret", None]


def test_table_columns_align_and_survive_empty_cells() -> None:
    text = render_table(["Tenant", "Network", "Gateway"], [["default", "n1", ""], ["t", "a-long-name", "1.1.1.1"]])
    lines = text.splitlines()
    assert lines[0] == "Tenant   Network      Gateway"
    assert lines[1] == "------   -------      -------"
    assert lines[2] == "default  n1"  # no trailing blanks
    assert parse_table(text) == [
        {"Tenant": "default", "Network": "n1", "Gateway": ""},
        {"Tenant": "t", "Network": "a-long-name", "Gateway": "1.1.1.1"},
    ]


def test_cells_format_lists_and_missing_values() -> None:
    assert format_cell(["p1", "p2"]) == "p1,p2"
    assert format_cell(None) == ""
    assert format_cell(0) == "0"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("10 mbps", "10Mbps"), ("1gbps", "1Gbps"), ("5Mb", "5Mbps"), ("10 kbps", "10Kbps"), ("", "")],
)
def test_bandwidth_is_shown_like_contiv(raw: str, shown: str) -> None:
    assert display_bandwidth({"bandwidth": raw}) == shown


def _peers(**given: str) -> dict[str, str | None]:
    names = ("from_group", "to_group", "from_network", "to_network", "from_ip", "to_ip")
    return {name: given.get(name) for name in names}


@pytest.mark.parametrize(
    ("direction", "given", "message"),
    [
        ("in", {"to_group": "g"}, "to-group for incoming"),
        ("in", {"to_network": "n"}, "to-network for incoming"),
        ("in", {"from_network": "n", "from_group": "g"}, "from-network together"),
        ("in", {"from_network": "n", "from_ip": "1.1.1.1"}, "from-network together"),
        ("out", {"from_group": "g"}, "from-group for outgoing"),
        ("out", {"from_network": "n"}, "from-network for outgoing"),
        ("out", {"from_ip": "1.1.1.1"}, "from-ip-address for outgoing"),
        ("out", {"to_network": "n", "to_ip": "1.1.1.1"}, "to-network together"),
        ("both", {}, "Unknown direction"),
    ],
)
def test_rule_peer_combinations_contiv_refuses(direction: str, given: dict[str, str], message: str) -> None:
    with click.Context(click.Command("rule-add")), pytest.raises(click.UsageError, match=message):
        check_rule_peers(direction, **_peers(**given))


@pytest.mark.parametrize(
    ("direction", "given"),
    [
        ("in", {"from_group": "g"}),
        ("in", {"from_network": "n"}),
        ("in", {"from_group": "g", "from_ip": "1.1.1.0/24"}),
        ("in", {"to_ip": "1.1.1.1"}),
        ("out", {"to_group": "g", "to_ip": "1.1.1.1"}),
        ("out", {"to_network": "n"}),
    ],
)
def test_rule_peer_combinations_contiv_accepts(direction: str, given: dict[str, str]) -> None:
    with click.Context(click.Command("rule-add")):
        check_rule_peers(direction, **_peers(**given))


def test_malformed_netmaster_url_is_a_usage_error() -> None:
    with pytest.raises(NetctlError) as caught:
        NetctlClient("http://[::1").list("tenants")
    assert caught.value.exit_code == 1
    assert "invalid netmaster URL" in caught.value.format_message()
