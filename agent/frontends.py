"""Start the agent's front ends (CNI plugin socket, Docker remote driver) over its EndpointOps.

Both front ends get the same EndpointOps object: one code path creates and deletes endpoints, so a
container is plumbed the same way whichever runtime asked for it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.endpoint_ops import EndpointOps

LOG = logging.getLogger(__name__)
DOCKER_PLUGIN_DIR = Path("/run/docker/plugins")


def docker_socket_path(plugin: str) -> str:
    """``contiv`` -> /run/docker/plugins/contiv.sock; a path is used as given."""
    return plugin if "/" in plugin else str(DOCKER_PLUGIN_DIR / f"{plugin}.sock")


def start_frontends(ops: EndpointOps, cni_socket: str, docker_plugin: str, state_dir: Path,
                    docker_scope: str = "global", docker_socket: str = "") -> None:
    if cni_socket:
        from agent.cni.server import serve as serve_cni

        serve_cni(ops, cni_socket)
        LOG.info("CNI plugin socket %s", cni_socket)
    if docker_plugin:
        from agent.docker.server import serve as serve_docker

        path = docker_socket_path(docker_plugin)
        source = ops.source

        def call(method: str, api_path: str, body: Any) -> Any:
            return source.ops(lambda client: client.request(method, api_path, body))

        host = ops.reconciler.cfg.host_label
        server = serve_docker(ops, path, state_dir / "docker", call, owner=host, scope=docker_scope)
        LOG.info("Docker network and IPAM driver on %s", path)
        if docker_socket:
            from agent.docker.container_labels import ContainerLabelFollower, DockerApi

            ContainerLabelFollower(DockerApi(docker_socket), server.driver.records, call, host,
                                   ops.reconciler.metrics).start()
            LOG.info("following dockerd at %s: containers' labels become their endpoints' labels", docker_socket)
