"""The agent's DNS responder: UDP and TCP servers on their own thread and event loop, dnslib's wire
codec, answers from ``Records``; other names relayed to the host's resolvers.

One listening address per tenant (``169.254.53.<tenant id>``, on the agent's DNS port, see
``agent.dns.port``): the flows send a container's port-53 traffic to its own tenant's address, so the
address a query arrives on says which tenant asks, even when two tenants use the same subnet. It runs
in its own thread and event loop; the records are replaced whole on every state change, so it answers
from the agent's last state while netmaster is down.

The fast path. Containers ask the same few names over and over, and dnslib's parse and pack cost
more than everything else a query takes (measured with py-spy: docs/performance.md). The reply to a
query the responder answers itself depends only on the asker's tenant, the query's bytes after its
id, and the records; so the first reply to each such query is kept, keyed by those bytes, and later
ones are that reply with the new query's id in front: no parse, no pack, no task. The kept replies go
with the records they came from (a state change starts an empty set, so TTL and freshness are those of
the slow path), forwarded names are never kept, and the set is bounded (emptied when full: a flood of
distinct names costs the slow path, not memory). UDP sockets are read in batches on each wake-up.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dnslib import PTR, QTYPE, RCODE, RR, SRV, A, DNSRecord

from agent.dns.records import TTL, Records

LOG = logging.getLogger(__name__)
FORWARD_TIMEOUT = 2.0
KEPT_REPLIES = 10_000  # per records; emptied when full
KEPT_QUERY_SIZE = 512  # bytes: longer queries are answered, never kept
UDP_BATCH = 64  # datagrams read per wake-up of a UDP socket
UDP_BUFFER = 1 << 20  # receive buffer: bursts wait in the kernel while the thread waits for a core
HEADER = 12


def resolvers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The host's resolvers (``nameserver`` lines), where names outside the zone go."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1], 53))
    except OSError:
        pass
    return out


@dataclass(frozen=True)
class _Answers:
    """Records and the replies already made from them: swapped as one, so a reply made from old
    records is never kept with new ones."""

    records: Records
    kept: dict[tuple[str, bytes], bytes] = field(default_factory=dict)  # (tenant, query[2:]) -> reply[2:]

    def kept_reply(self, data: bytes, tenant: str) -> bytes | None:
        tail = self.kept.get((tenant, data[2:])) if len(data) > HEADER else None
        return data[:2] + tail if tail is not None else None

    def keep(self, data: bytes, tenant: str, reply: bytes) -> None:
        if len(data) > KEPT_QUERY_SIZE:  # an ordinary question is far smaller: bounded memory
            return
        if len(self.kept) >= KEPT_REPLIES:
            self.kept.clear()
        self.kept[(tenant, data[2:])] = reply[2:]


class DnsResponder:
    def __init__(self, upstreams: Sequence[tuple[str, int]], zone: str = "contiv") -> None:
        self.upstreams = list(upstreams)
        self._answers = _Answers(Records(zone))
        self.queries = 0
        self.forwarded = 0
        self.kept_answers = 0  # queries answered from a kept reply
        self._loop = asyncio.new_event_loop()
        self._listeners: dict[str, tuple[socket.socket, asyncio.Server]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # queries on the slow path (the loop keeps weak references)
        self._thread = threading.Thread(target=self._loop.run_forever, name="dns", daemon=True)
        self._thread.start()

    @property
    def records(self) -> Records:
        return self._answers.records

    def update(self, records: Records) -> None:
        self._answers = _Answers(records)

    def listen(self, addresses: Mapping[str, str]) -> None:
        """Serve exactly *addresses* (address -> tenant): start the new ones, stop the others."""
        asyncio.run_coroutine_threadsafe(self._listen(dict(addresses)), self._loop).result(10)

    def stop(self) -> None:
        self.listen({})
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _listen(self, addresses: dict[str, str]) -> None:
        for address in [a for a in self._listeners if a not in addresses]:
            udp, tcp = self._listeners.pop(address)
            self._loop.remove_reader(udp.fileno())
            udp.close()
            tcp.close()
        for address, tenant in addresses.items():
            if address in self._listeners:
                continue
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
                udp.bind((address, 53))
                udp.setblocking(False)
                tcp = await asyncio.start_server(lambda r, w, t=tenant: self._tcp(r, w, t), address, 53)
            except OSError as exc:
                udp.close()
                LOG.error("DNS for tenant %s cannot listen on %s:53: %s", tenant, address, exc)
                continue
            self._loop.add_reader(udp.fileno(), self._udp_ready, udp, tenant)
            self._listeners[address] = (udp, tcp)
            LOG.info("DNS for tenant %s on %s:53", tenant, address)

    def _udp_ready(self, sock: socket.socket, tenant: str) -> None:
        """Read what is waiting (up to a batch): kept replies answered on the spot, the rest in tasks."""
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error of an earlier send: the socket is still good
                LOG.debug("DNS socket of tenant %s: %s", tenant, exc)
                continue
            reply = self._count_and_find_kept(data, tenant)
            if reply is None:
                task = self._loop.create_task(self._udp_answer(sock, data, addr, tenant))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            _send(sock, reply, addr)

    async def _udp_answer(self, sock: socket.socket, data: bytes, addr: tuple[str, int], tenant: str) -> None:
        reply = await self._answer(data, tenant)
        if reply is not None:
            _send(sock, reply, addr)

    async def handle(self, data: bytes, tenant: str) -> bytes | None:
        """The reply to one query (None: not a query we can parse), kept or made."""
        reply = self._count_and_find_kept(data, tenant)
        return reply if reply is not None else await self._answer(data, tenant)

    def _count_and_find_kept(self, data: bytes, tenant: str) -> bytes | None:
        """Count one query; the kept reply to it, if there is one (the fast path of UDP and TCP alike)."""
        self.queries += 1
        reply = self._answers.kept_reply(data, tenant)
        if reply is not None:
            self.kept_answers += 1
        return reply

    async def _answer(self, data: bytes, tenant: str) -> bytes | None:
        """The slow path: parse, look up, pack; the reply kept unless it came from upstream."""
        answers = self._answers  # the records and the kept replies of one moment
        try:
            query = DNSRecord.parse(data)
        except Exception:  # dnslib raises its own DNSError and struct errors for garbage
            return None
        question = query.q
        answer = answers.records.answer(tenant, str(question.qname), QTYPE.get(question.qtype, ""))
        if answer.forward:
            return await self._forward(data) or _servfail(query)
        reply = query.reply()
        if answer.nxdomain:
            reply.header.rcode = RCODE.NXDOMAIN
        for address in answer.addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL))
        for port, target in answer.srv:
            reply.add_answer(RR(question.qname, QTYPE.SRV, rdata=SRV(0, 100, port, target + "."), ttl=TTL))
        for target in answer.ptr:
            reply.add_answer(RR(question.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
        packed = bytes(reply.pack())
        answers.keep(data, tenant, packed)
        return packed

    async def _forward(self, data: bytes) -> bytes | None:
        """Relay *data* to the host's resolvers in turn; the first answer wins."""
        self.forwarded += 1
        for upstream in self.upstreams:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[bytes] = loop.create_future()
            transport, _ = await loop.create_datagram_endpoint(lambda d=done: _Relay(d), remote_addr=upstream)
            try:
                transport.sendto(data)
                return await asyncio.wait_for(done, FORWARD_TIMEOUT)
            except (TimeoutError, OSError):
                continue
            finally:
                transport.close()
        return None

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tenant: str) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await self.handle(await reader.readexactly(length), tenant)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _send(sock: socket.socket, reply: bytes, addr: tuple[str, int]) -> None:
    try:
        sock.sendto(reply, addr)
    except OSError:  # a full send buffer: the asker retries, as with any lost datagram
        pass


def _servfail(query: DNSRecord) -> bytes:
    reply = query.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.done.done():
            self.done.set_result(data)
