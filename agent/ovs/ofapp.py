"""The os-ken application that sits inside the agent process.

It only tracks the switch connection and routes replies (barrier replies, errors, flow statistics)
back to the thread that is waiting for them. All flow programming is done by
``agent.ovs.ofcontroller.OpenFlowController``; keeping the app this thin means os-ken's event machinery
never decides anything about the pipeline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

LOG = logging.getLogger(__name__)

# The controller object registers itself here before os-ken instantiates the app (os-ken creates app
# instances itself, so this is the hand-over point).
ON_START: list[Callable[[AgentOFApp], None]] = []


class AgentOFApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.datapath: Any = None
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._barriers: dict[int, Future[None]] = {}
        self._errors: dict[int, str] = {}
        self._stats: dict[int, tuple[list[Any], Future[list[Any]]]] = {}
        self.on_connect: list[Callable[[Any], None]] = []
        for hook in ON_START:
            hook(self)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        LOG.info("switch connected: datapath %016x", dp.id)
        self.datapath = dp
        self.connected.set()
        for hook in self.on_connect:
            hook(dp)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev: Any) -> None:
        if ev.datapath is self.datapath:
            LOG.warning("switch disconnected")
            self.datapath = None
            self.connected.clear()
            with self._lock:
                pending = list(self._barriers.values())
                self._barriers.clear()
            for fut in pending:
                if not fut.done():
                    fut.set_exception(ConnectionError("switch disconnected"))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        text = f"OpenFlow error type={msg.type} code={msg.code} xid={msg.xid:#x}"
        LOG.error(text)
        with self._lock:
            self._errors[msg.xid] = text

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier(self, ev: Any) -> None:
        with self._lock:
            fut = self._barriers.pop(ev.msg.xid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        with self._lock:
            entry = self._stats.get(msg.xid)
            if entry is None:
                return
            entry[0].extend(msg.body)
            done = not (msg.flags & 1)  # OFPMPF_REPLY_MORE
            if done:
                del self._stats[msg.xid]
        if done and not entry[1].done():
            entry[1].set_result(entry[0])

    # -- used by the controller thread ----------------------------------------------------------

    def expect_barrier(self, xid: int) -> Future[None]:
        fut: Future[None] = Future()
        with self._lock:
            self._barriers[xid] = fut
        return fut

    def expect_stats(self, xid: int) -> Future[list[Any]]:
        fut: Future[list[Any]] = Future()
        with self._lock:
            self._stats[xid] = ([], fut)
        return fut

    def take_errors(self, xids: set[int] | range) -> list[str]:
        with self._lock:
            found = [self._errors.pop(x) for x in list(self._errors) if x in xids]
        return found
