"""The HTTP client agents and other consumers use to follow netmaster and to manage endpoints.

Following state is Kubernetes' list+watch, made robust here once so no consumer re-invents it:

* ``snapshot()`` gives every object at one revision; ``watch(since)`` streams the changes after it;
* :meth:`NetmasterClient.follow` chains them forever: it reconnects with backoff (to the next
  netmaster if several are given), resumes from the last revision it knows complete, and when
  netmaster answers 410 (that revision is compacted) it takes a new snapshot and yields a
  :class:`Resync`. Delivery is at-least-once across reconnects: events of the revision in flight may
  come again, which a cache (see :mod:`contiv_api.informer`) absorbs;
* a stream that stays silent longer than a few bookmark intervals is treated as dead (a half-open TCP
  connection after a netmaster host died gives no error otherwise).

Endpoint calls retry on connection errors and 503 (store unavailable) until ``retry_for`` runs out:
endpoint create is idempotent by endpointID and delete is idempotent, so a retry is always safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from contiv_api.backoff import Backoff
from contiv_api.watch_format import (
    Change,
    Progress,
    Resync,
    ResyncRequired,
    StreamItem,
    WatchInterrupted,
    object_state,
    parse_line,
)

log = logging.getLogger(__name__)

KINDS = (
    "tenant", "network", "endpointGroup", "policy", "rule", "appProfile", "netprofile",
    "extContractsGroup", "serviceLB", "Bgp", "global", "aciGw", "endpoint", "agent", "aciSync",
)  # fmt: skip


AGENT_HEADER = "X-Contiv-Agent"
#: An endpoint whose labels carry this one takes over the address reservation it names (Docker IPAM).
CLAIM_LABEL = "io.contiv.reservation"

# -- errors --------------------------------------------------------------------------------------------


class NetmasterError(Exception):
    """netmaster answered with an error status (``status``) and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"netmaster: {status} {message}")
        self.status = status
        self.message = message


class NetmasterUnavailableError(NetmasterError):
    """No netmaster could be reached, or it kept answering 503, for longer than the retry budget."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


# -- the client ----------------------------------------------------------------------------------------


class NetmasterClient:
    """The asynchronous client of daemons (agents, front ends): follows state, manages endpoints.

    Talks to one or more netmasters (any of them: every netmaster serves the whole API). netctl has
    its own synchronous client, :class:`netmaster.cli.client.NetctlClient`.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retry_for: float = 30.0,
        idle_timeout: float = 20.0,
        verify: bool | str = True,
        agent_id: str | None = None,
        local_address: str | None = None,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("NetmasterClient needs at least one netmaster URL")
        self.retry_for = retry_for
        self.idle_timeout = idle_timeout  # a watch silent this long is dead (bookmarks come every ~5 s)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if agent_id:
            # Lets the netmaster serving this agent's watch list it as a live agent (ClusterNode).
            headers[AGENT_HEADER] = agent_id
        # local_address: the source address of every connection (an agent's --ctrl-ip).
        transport = httpx.AsyncHTTPTransport(verify=verify, local_address=local_address) if local_address else None
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, verify=verify, transport=transport)
        self._current = 0
        self._retry_now = asyncio.Event()

    @property
    def url(self) -> str:
        """The netmaster in use now."""
        return self.urls[self._current]

    def _failover(self) -> None:
        self._current = (self._current + 1) % len(self.urls)

    def retry_now(self) -> None:
        """Cut short the current retry delay of ``request`` or ``follow`` (call on the client's loop).

        Its backoff grows to seconds during an outage; whoever learns first that netmaster is back (a
        heartbeat, an endpoint call) says so, and the watch resumes at once instead of at the end of
        its current delay.
        """
        self._retry_now.set()

    async def _pause(self, delay: float) -> None:
        """Sleep *delay* seconds, or less if ``retry_now`` was called since the last pause (also while
        a request was in flight: clearing the flag before waiting would lose that call)."""
        try:
            await asyncio.wait_for(self._retry_now.wait(), delay)
        except TimeoutError:
            pass
        self._retry_now.clear()

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> NetmasterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plain requests ----------------------------------------------------------------------------------

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """``method path`` on some netmaster; retries transport errors and 503 within ``retry_for``.

        Only for idempotent requests (every netmaster API call is, except creating objects with
        different bodies under one key, which the caller would not retry anyway).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        backoff = Backoff(0.05, 2.0)
        while True:
            url = self.url + path
            try:
                resp = await self._http.request(method, url, json=body)
            except httpx.TransportError as exc:
                problem = f"{url}: {type(exc).__name__}: {exc}"
                self._failover()
            else:
                if resp.status_code < 400:
                    return resp.json() if resp.content else None
                message = _error_message(resp)
                if resp.status_code != 503:
                    raise NetmasterError(resp.status_code, message)
                problem = f"{url}: 503 {message}"
                self._failover()  # another netmaster may still reach the store
            delay = backoff.next()
            if loop.time() + delay > deadline:
                raise NetmasterUnavailableError(f"gave up after {self.retry_for:.0f}s: {problem}")
            log.info("netmaster request %s %s failed (%s); retrying in %.1fs", method, path, problem, delay)
            await self._pause(delay)

    async def create_endpoint(
        self,
        endpoint_id: str,
        *,
        network: str,
        tenant: str = "default",
        group: str | None = None,
        container_id: str = "",
        host: str = "",
        **optional: Any,
    ) -> dict[str, Any]:
        """Allocate an endpoint (address, MAC, tags); a repeated call returns the same record.

        ``optional`` takes the remaining wire fields by their JSON names: ``containerName``,
        ``ipAddress`` (request a specific address), ``intfName``, ``labels``.
        """
        body: dict[str, Any] = {
            "endpointID": endpoint_id,
            "tenantName": tenant,
            "networkName": network,
            "containerID": container_id,
            "host": host,
            **optional,
        }
        if group:
            body["groupName"] = group
        return await self.request("POST", "/api/v1/endpoints/", body)

    async def delete_endpoint(self, endpoint_id: str) -> None:
        """Release an endpoint; deleting one that is already gone succeeds."""
        await self.request("DELETE", f"/api/v1/endpoints/{quote(endpoint_id, safe='')}/")

    # -- list + watch ----------------------------------------------------------------------------------

    async def snapshot(self) -> Resync:
        data = await self.request("GET", "/api/v1/snapshot")
        return Resync(int(data["revision"]), [object_state(o) for o in data["objects"]])

    async def watch(self, since: int) -> AsyncIterator[Change | Progress]:
        """One watch stream from ``since`` on the current netmaster (no reconnecting: see ``follow``)."""
        url = f"{self.url}/api/v1/watch"
        timeout = httpx.Timeout(self._http.timeout.connect, read=self.idle_timeout)
        try:
            async with self._http.stream("GET", url, params={"since": since}, timeout=timeout) as resp:
                if resp.status_code == 410:
                    await resp.aread()
                    raise ResyncRequired(_error_message(resp))
                if resp.status_code != 200:
                    await resp.aread()
                    if resp.status_code in (401, 403, 400, 404):
                        raise NetmasterError(resp.status_code, _error_message(resp))
                    raise WatchInterrupted(f"{url}: {resp.status_code} {_error_message(resp)}")
                async for line in resp.aiter_lines():
                    if line.strip():
                        yield parse_line(line)
        except httpx.TransportError as exc:
            raise WatchInterrupted(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise WatchInterrupted(f"{url}: stream closed by netmaster")

    async def follow(self, since: int | None = None) -> AsyncIterator[StreamItem]:
        """Snapshot (unless ``since`` is given), then changes, forever; see the module docstring."""
        backoff = Backoff(0.1, 5.0)
        complete = since  # every change up to this revision has been yielded
        while True:
            try:
                if complete is None:
                    snap = await self.snapshot()
                    complete = snap.revision
                    yield snap
                async for item in self.watch(complete):
                    backoff.reset()
                    # Changes of one revision may span lines: only a later revision (or a bookmark)
                    # proves the previous revision complete, so resume just before an open one.
                    if isinstance(item, Change):
                        complete = max(complete, item.revision - 1)
                    else:
                        complete = max(complete, item.revision)
                    yield item
            except ResyncRequired as exc:
                log.info("watch from revision %s is compacted (%s); taking a new snapshot", complete, exc)
                complete = None
            except (WatchInterrupted, NetmasterUnavailableError) as exc:
                self._failover()
                delay = backoff.next()
                log.info("watch interrupted (%s); resuming from revision %s in %.1fs", exc, complete, delay)
                await self._pause(delay)


def _error_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return json.dumps(body)[:500]
