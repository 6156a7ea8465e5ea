"""A Docker container's own labels (``docker run --label app=web``) as its Contiv endpoints' labels.

Docker sends a network driver no container labels (CreateEndpoint carries the endpoint's driver
options only), so services could select Docker containers by ``--driver-opt label.KEY=VALUE`` alone.
Like Calico's libnetwork plugin (and Contiv's netplugin, which read container labels too), the agent,
given dockerd's API socket (``--docker-socket``), follows dockerd's event stream: for each container
that starts (or is connected to a network), it inspects the container and, for each of its networks
whose endpoint this agent created through the driver, sets that endpoint's labels in netmaster
(``PUT /api/v1/endpoints/{id}/labels``), where services and DNS read them.

The labels an endpoint gets: the container's labels that are valid user labels (``io.contiv.*`` keys,
the system's own, and malformed keys or values are left out), with the endpoint's driver-option
labels over them: an option is given for this one network attachment, so it wins over the container's
label of the same key.

On every (re)connection the follower opens the event stream, then lists the running containers once:
nothing that started while it was away is missed. A netmaster that cannot be reached ends the stream
(reconnect, so the catch-up list applies it again later); a refusal is logged and skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from agent.docker.netmaster_calls import NetmasterCall
from agent.docker.records import DockerEndpoint, DriverRecords
from agent.metrics import AgentMetrics
from contiv_api.backoff import Backoff
from contiv_api.netmaster_client import NetmasterError, NetmasterUnavailableError
from contiv_api.service_lb import MAX_LABELS, label_problem

LOG = logging.getLogger(__name__)
# Container starts and network connects (``docker network connect`` of a running container).
EVENT_FILTERS = json.dumps({"type": ["container", "network"], "event": ["start", "connect"]})


def container_labels(labels: Mapping[str, Any] | None) -> dict[str, str]:
    """The container's labels that may be endpoint labels (contiv_api.service_lb.label_problem): the
    others (``io.contiv.*``, malformed) are left out, and beyond MAX_LABELS the last keys in order."""
    usable = {k: v for k, v in sorted((labels or {}).items()) if label_problem(k, v) is None}
    return dict(list(usable.items())[:MAX_LABELS])


def endpoint_labels(container: Mapping[str, Any] | None, options: Mapping[str, str]) -> dict[str, str]:
    """An endpoint's labels: the container's usable labels, its driver-option labels over them."""
    merged = {**container_labels(container), **options}
    return dict(list(merged.items())[:MAX_LABELS])


def _container_ids(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        actor = event.get("Actor") or {}
        if event.get("Type") == "network":
            container_id = (actor.get("Attributes") or {}).get("container", "")
        else:
            container_id = actor.get("ID") or event.get("id", "")
        if container_id:
            yield container_id


class DockerApi:
    """The three dockerd API calls the follower needs, over its unix socket."""

    def __init__(self, socket: str, timeout: float = 10.0) -> None:
        self.socket = socket
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url="http://docker",
                                  timeout=timeout)

    def running(self) -> list[str]:
        resp = self._http.get("/containers/json")
        resp.raise_for_status()
        return [c["Id"] for c in resp.json()]

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """The container's inspect document, or None if it is gone already."""
        resp = self._http.get(f"/containers/{quote(container_id, safe='')}/json")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    @contextmanager
    def events(self) -> Iterator[Iterator[str]]:
        """The event stream, open (what happens from now on is in it): container ids, until it ends."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        with self._http.stream("GET", "/events", params={"filters": EVENT_FILTERS}, timeout=timeout) as resp:
            resp.raise_for_status()
            yield _container_ids(resp.iter_lines())

    def close(self) -> None:
        self._http.close()


class ContainerLabelFollower:
    """Keeps the labels of this agent's Docker endpoints equal to their containers' (see the module)."""

    def __init__(self, api: DockerApi, records: DriverRecords, call: NetmasterCall, host: str,
                 metrics: AgentMetrics) -> None:
        self.api, self.records, self.call, self.host, self.metrics = api, records, call, host, metrics
        self._applied: dict[str, dict[str, str]] = {}  # endpoint id -> labels netmaster has from us
        self._stop = threading.Event()

    def start(self) -> ContainerLabelFollower:
        threading.Thread(target=self.run, name="docker-labels", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        backoff = Backoff(initial=0.2, maximum=5.0)
        failing = False
        while not self._stop.is_set():
            try:
                with self.api.events() as started:
                    if failing:
                        LOG.info("docker labels: following dockerd at %s again", self.api.socket)
                    failing = False
                    backoff.reset()
                    self.metrics.docker_events_following.set(1)
                    for container_id in self.api.running():  # what started while we were not following
                        self.sync(container_id)
                    for container_id in started:
                        self.sync(container_id)
            except (httpx.HTTPError, OSError, ValueError, NetmasterUnavailableError) as exc:
                if not failing:
                    LOG.warning("docker labels: dockerd at %s: %s (retrying)", self.api.socket, exc)
                failing = True
            self.metrics.docker_events_following.set(0)
            self._stop.wait(backoff.next())

    def sync(self, container_id: str) -> None:
        """Bring the labels of the container's endpoints of this agent to its labels."""
        info = self.api.inspect(container_id)
        if info is None:
            return
        labels = (info.get("Config") or {}).get("Labels")
        networks = ((info.get("NetworkSettings") or {}).get("Networks") or {}).values()
        for net in networks:
            ep = self.records.endpoints.get((net or {}).get("EndpointID") or "")
            if ep is not None:
                self._apply(ep, endpoint_labels(labels, ep.labels), info.get("Name", container_id[:12]))
        for gone in set(self._applied) - set(self.records.endpoints):
            del self._applied[gone]

    def _apply(self, ep: DockerEndpoint, labels: dict[str, str], container: str) -> None:
        if self._applied.get(ep.endpoint_id) == labels:
            return
        path = f"/api/v1/endpoints/{quote(ep.endpoint_id, safe='')}/labels"
        try:
            self.call("PUT", path, {"host": self.host, "labels": labels})
        except NetmasterUnavailableError:
            raise
        except NetmasterError as exc:
            LOG.warning("docker labels: endpoint %s of container %s: netmaster refused its labels: %s",
                        ep.endpoint_id[:12], container, exc.message)
            self.metrics.docker_label_updates.labels("refused").inc()
            return
        self._applied[ep.endpoint_id] = labels
        self.metrics.docker_label_updates.labels("set").inc()
        LOG.info("docker labels: endpoint %s of container %s has labels %s", ep.endpoint_id[:12], container,
                 ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)")
