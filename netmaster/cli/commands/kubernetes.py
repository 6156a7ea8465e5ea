"""``netctl apply -f FILE`` and ``netctl delete -f FILE``: Kubernetes manifests (NetworkPolicy,
Namespace, Pod labels) to netmaster, as ``kubectl`` would send them to an API server.

Every document of the file is checked first (the same parser netmaster uses), so a file with one bad
document changes nothing; then each is sent in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from contiv_api.k8s_netpol import KIND_NAMESPACE, KIND_POD, KIND_POLICY, PolicyError, parse_manifest
from netmaster.cli.errors import NetctlError
from netmaster.cli.framework import NetctlCommand, get_client

_PLURAL = {KIND_POLICY: "networkpolicies", KIND_NAMESPACE: "namespaces", KIND_POD: "pods"}
file_option = click.option("-f", "--filename", "path", required=True, type=click.Path(dir_okay=False),
                           help="YAML or JSON file of manifests ('-' for standard input).")
tenant_option = click.option("-t", "--tenant", default="default", show_default=True, help="Contiv tenant.")


def read_manifests(path: str, tenant: str) -> list[tuple[dict[str, Any], str, str]]:
    """(document, kind, key) of every document of *path*; NetctlError naming the first bad one."""
    try:
        text = click.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise NetctlError(f"cannot read {path}: {exc}") from None
    out = []
    for i, doc in enumerate(docs, start=1):
        try:
            kind, key, _ = parse_manifest(doc, tenant)
        except PolicyError as exc:
            raise NetctlError(f"{path}: document {i}: {exc}") from None
        out.append((doc, kind, key))
    if not out:
        raise NetctlError(f"{path}: no manifests")
    return out


def _send(path: str, tenant: str, deleting: bool) -> None:
    client = get_client()
    for doc, kind, key in read_manifests(path, tenant):
        if deleting:
            client.request("DELETE", f"/api/v1/kubernetes/{_PLURAL[kind]}/{key}/")
        else:
            client.request("POST", f"/api/v1/kubernetes/?tenant={tenant}", doc)
        click.echo(f"{_PLURAL[kind]}/{key} {'deleted' if deleting else 'configured'}")


@click.command("apply", cls=NetctlCommand)
@file_option
@tenant_option
def apply_cli(path: str, tenant: str) -> None:
    """Create or replace Kubernetes objects (NetworkPolicy, Namespace, Pod labels)."""
    _send(path, tenant, deleting=False)


@click.command("delete", cls=NetctlCommand)
@file_option
@tenant_option
def delete_cli(path: str, tenant: str) -> None:
    """Delete the Kubernetes objects a file names."""
    _send(path, tenant, deleting=True)
