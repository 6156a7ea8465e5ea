"""Netlink inside a container's network namespace without forking.

pyroute2's ``IPRoute(netns=...)`` forks a helper process for every instance (and, with its default
``O_CREAT`` flag, creates the namespace if it is gone). On the endpoint path that fork was a third of
plumbing and most of the verification. A socket belongs to the namespace it was created in, whatever
thread uses it later, so here a short-lived thread enters the namespace with ``setns(2)`` (which only
moves the calling thread), creates the netlink socket and exits; the agent's own threads never
change namespace. The namespace is opened once, by path: a namespace that is gone is a clean
``FileNotFoundError`` and nothing is created.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pyroute2 import IPRoute

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def netns_path(netns: str) -> str:
    """A namespace is given as a path (CNI, /proc/<pid>/ns/net) or as a name under /run/netns."""
    return netns if "/" in netns else f"/run/netns/{netns}"


@contextmanager
def open_netns(netns: str) -> Iterator[int]:
    """An fd of the namespace, for ``setns`` and for moving a link there (``net_ns_fd``)."""
    fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def run_in(ns_fd: int, fn: Callable[[], T]) -> T:
    """``fn()`` run by a short-lived thread that entered the namespace *ns_fd* (what it creates or
    opens belongs to that namespace: sockets, and files under /proc/sys/net); its result or
    exception is handed back to the caller's thread."""
    out: list[Any] = []

    def call() -> None:
        try:
            if _LIBC.setns(ns_fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns: {os.strerror(err)}")
            out.append((True, fn()))
        except BaseException as exc:  # handed to the caller's thread
            out.append((False, exc))

    thread = threading.Thread(target=call, name="netns-call", daemon=True)
    thread.start()
    thread.join()
    ok, value = out[0]
    if not ok:
        raise value
    return value


def socket_in(ns_fd: int, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside the namespace *ns_fd* (netlink for ``iproute_in``, AF_INET for
    ethtool's ioctl, which resolves names in the socket's namespace)."""
    return run_in(ns_fd, lambda: socket.socket(family, type_, proto))


@contextmanager
def iproute_in(ns_fd: int) -> Iterator[IPRoute]:
    """``IPRoute`` bound to the namespace *ns_fd* (closed, with its socket, on exit)."""
    sock = socket_in(ns_fd, socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
    try:
        ipr = IPRoute(fileno=sock.fileno())
    except BaseException:
        sock.close()
        raise
    sock.detach()  # IPRoute owns the fd now
    with ipr:
        yield ipr
