"""The agent side of the CNI plugin: the verbs, served on a unix socket.

The ``contiv`` binary forwards each invocation here (see :mod:`agent.cni.plugin` for the wire
format). Every verb ends in :class:`agent.endpoint_ops.EndpointOps`, the one code path that creates
and deletes endpoints, so CNI, Docker and the agent's own sync cannot disagree about what an endpoint
is. Requests are validated completely (:func:`agent.cni.protocol.parse_request`,
:func:`~agent.cni.protocol.placement`) before anything is touched, so bad input has no side effects.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.cni import protocol as p
from agent.cni.plugin import SUPPORTED_VERSIONS
from agent.endpoint_ops import AddRequest, EndpointError
from agent.unix_server import UnixSocketServer

if TYPE_CHECKING:
    from agent.endpoint_ops import EndpointOps

LOG = logging.getLogger(__name__)
MAX_REQUEST = 1 << 20

# EndpointOps error kinds -> CNI codes. An unknown tenant/network/group is a configuration problem
# (7); a conflict such as a taken static address is plugin-specific (100).
_KIND_CODES = {
    "invalid": p.ERR_INVALID_CONFIG,
    "not_found": p.ERR_INVALID_CONFIG,
    "conflict": 100,
    "unavailable": p.ERR_TRY_AGAIN_LATER,
    "internal": p.ERR_INTERNAL,
}
ERR_CHECK_FAILED = 101  # CHECK found the interface, address or OVS port missing


def _as_cni_error(exc: Exception, what: str) -> p.CniError:
    if isinstance(exc, EndpointError):
        return p.CniError(_KIND_CODES[exc.kind], f"{what}: {exc.message}", exc.kind)
    LOG.exception("%s failed", what)
    return p.CniError(p.ERR_INTERNAL, f"{what}: internal error", f"{type(exc).__name__}: {exc}")


class CniHandlers:
    """The CNI verbs over EndpointOps. ``handle`` never raises: it returns (exit code, stdout)."""

    def __init__(self, ops: EndpointOps) -> None:
        self.ops = ops

    def handle(self, env: dict[str, str], stdin: str) -> tuple[int, str]:
        version = p.reply_version(stdin)
        try:
            req = p.parse_request(env, stdin)
            version = req.version
            verb: Callable[[p.Request], dict[str, Any] | None] = getattr(self, "cmd_" + req.command.lower())
            out = verb(req)
            return 0, json.dumps(out) if out is not None else ""
        except p.CniError as err:
            return 1, json.dumps(err.to_json(version))
        except Exception as exc:  # a bug must still produce a CNI error, not a hung runtime
            return 1, json.dumps(_as_cni_error(exc, "request").to_json(version))

    # -- verbs --------------------------------------------------------------------------------------

    def cmd_version(self, req: p.Request) -> dict[str, Any]:
        return {"cniVersion": req.version, "supportedVersions": list(SUPPORTED_VERSIONS)}

    @staticmethod
    def _require_netns(req: p.Request) -> None:
        if not os.path.exists(req.netns):
            raise p.CniError(
                p.ERR_INVALID_NETNS,
                f"network namespace {req.netns} does not exist",
                "the container is gone or CNI_NETNS is wrong",
            )

    def cmd_add(self, req: p.Request) -> dict[str, Any]:
        where = p.placement(req)
        self._require_netns(req)
        add = AddRequest(endpoint_id=req.endpoint_id, tenant=where.tenant, network=where.network, group=where.group,
                         container_id=req.container_id, container_name=where.container_name, netns=req.netns,
                         ifname=req.ifname, requested_ip=where.requested_ip, labels=where.labels)
        try:
            res = self.ops.add(add)
        except Exception as exc:
            raise _as_cni_error(exc, f"ADD {req.endpoint_id}") from None
        att = p.Attachment(
            res.container_ifname or req.ifname,
            res.mac,
            res.mtu,
            req.netns,
            res.host_ifname,
            res.ip,
            res.prefix_len,
            res.gateway,
        )
        return p.render_result(req.version, att, req.conf)

    def cmd_del(self, req: p.Request) -> None:
        try:
            self.ops.delete(req.endpoint_id)
        except Exception as exc:
            raise _as_cni_error(exc, f"DEL {req.endpoint_id}") from None

    def cmd_check(self, req: p.Request) -> None:
        if not isinstance(req.conf.get("prevResult"), dict):
            raise p.CniError(p.ERR_INVALID_CONFIG, "CHECK needs prevResult", "the runtime must pass the ADD result")
        self._require_netns(req)
        try:
            self.ops.check(req.endpoint_id)
            local = {ep.endpoint_id: ep for ep in self.ops.list_local()}
        except Exception as exc:
            err = _as_cni_error(exc, f"CHECK {req.endpoint_id}")
            if isinstance(exc, EndpointError) and exc.kind != "unavailable":
                err.code = ERR_CHECK_FAILED  # EndpointOps.check found something the plugin created missing
            raise err from None
        ep = local.get(req.endpoint_id)
        if ep is None:
            raise p.CniError(ERR_CHECK_FAILED, f"endpoint {req.endpoint_id} is not on this host")
        claimed = p.prev_result_addresses(req.conf)
        if ep.ip not in claimed:
            raise p.CniError(
                p.ERR_INVALID_CONFIG,
                f"prevResult does not hold the endpoint's address {ep.ip}",
                f"prevResult addresses: {sorted(claimed)}",
            )

    def cmd_status(self, req: p.Request) -> None:
        try:
            ready, reason = self.ops.status()
        except Exception as exc:
            ready, reason = False, f"{type(exc).__name__}: {exc}"
        if not ready:
            raise p.CniError(p.ERR_NOT_AVAILABLE, "contiv is not ready for ADD", reason)

    def cmd_gc(self, req: p.Request) -> None:
        """Delete every CNI endpoint of this host, on this configuration's network, that the runtime
        does not list as valid. Keeps going past failures and reports them all at the end."""
        valid = p.valid_attachments(req.conf)
        tenant, network = req.conf.get("tenant") or "default", req.conf.get("network") or req.conf["name"]
        try:
            local = self.ops.list_local()
        except Exception as exc:
            raise _as_cni_error(exc, "GC") from None
        failures = []
        for ep in local:
            ident = p.split_endpoint_id(ep.endpoint_id)
            if ident is None or ident in valid:
                continue  # not a CNI endpoint (Docker's), or still in use
            if (ep.tenant, ep.network) != (tenant, network):
                continue  # another network's GC owns it
            try:
                self.ops.delete(ep.endpoint_id)
                LOG.info("GC removed endpoint %s", ep.endpoint_id)
            except Exception as exc:
                failures.append(f"{ep.endpoint_id}: {exc.message if isinstance(exc, EndpointError) else exc}")
        if failures:
            raise p.CniError(
                p.ERR_TRY_AGAIN_LATER, f"GC could not remove {len(failures)} endpoint(s)", "; ".join(failures)
            )


# -- transport --------------------------------------------------------------------------------------


class _Handler(socketserver.StreamRequestHandler):
    server: CniServer

    def handle(self) -> None:
        started = time.monotonic()
        data = self.rfile.read(MAX_REQUEST + 1)
        try:
            if len(data) > MAX_REQUEST:
                raise ValueError("request too large")
            msg = json.loads(data)
            env, stdin = msg["env"], msg["stdin"]
            if not isinstance(env, dict) or not isinstance(stdin, str):
                raise ValueError("env must be an object and stdin a string")
            env = {str(k): str(v) for k, v in env.items()}
        except (ValueError, KeyError, TypeError) as exc:
            err = p.CniError(p.ERR_DECODE, "malformed request from the plugin", str(exc))
            self._reply(1, json.dumps(err.to_json("1.1.0")))
            return
        code, out = self.server.handlers.handle(env, stdin)
        LOG.info(
            "cni %s %s:%s -> %d in %.1f ms",
            env.get("CNI_COMMAND"),
            env.get("CNI_CONTAINERID", "-"),
            env.get("CNI_IFNAME", "-"),
            code,
            (time.monotonic() - started) * 1000,
        )
        self._reply(code, out)

    def _reply(self, code: int, stdout: str) -> None:
        self.wfile.write(json.dumps({"code": code, "stdout": stdout, "stderr": ""}).encode())


class CniServer(UnixSocketServer):
    """Concurrent: runtimes add many containers at once, and each request waits on OVS/netmaster."""

    request_queue_size = 512  # a burst of pods must queue, not bounce off a full backlog (EAGAIN)
    client_label = "cni"

    def __init__(self, path: str, handlers: CniHandlers) -> None:
        self.handlers = handlers
        super().__init__(path, _Handler)

    def start(self, name: str = "cni-server") -> CniServer:
        return super().start(name)


def serve(ops: EndpointOps, path: str) -> CniServer:
    """Serve the CNI verbs on *path* in a background thread."""
    return CniServer(path, CniHandlers(ops)).start()
