"""The agent's DNS responder: asyncio UDP and TCP servers, dnslib's wire codec, answers from
``Records``; other names relayed to the host's resolvers.

One listening address per tenant (``169.254.53.<tenant id>``, on the agent's DNS port, see
``agent.dns.port``): the flows send a container's port-53 traffic to its own tenant's address, so the
address a query arrives on says which tenant asks, even when two tenants use the same subnet. It runs
in its own thread and event loop; the records are replaced whole on every state change, so it answers
from the agent's last state while netmaster is down.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Mapping, Sequence

from dnslib import PTR, QTYPE, RCODE, RR, SRV, A, DNSRecord

from agent.dns.records import TTL, Records

LOG = logging.getLogger(__name__)
FORWARD_TIMEOUT = 2.0


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


class DnsResponder:
    def __init__(self, upstreams: Sequence[tuple[str, int]], zone: str = "contiv") -> None:
        self.upstreams = list(upstreams)
        self.records = Records(zone)
        self.queries = 0
        self.forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._listeners: dict[str, tuple[asyncio.DatagramTransport, asyncio.Server]] = {}
        self._thread = threading.Thread(target=self._loop.run_forever, name="dns", daemon=True)
        self._thread.start()

    def update(self, records: Records) -> None:
        self.records = records

    def listen(self, addresses: Mapping[str, str]) -> None:
        """Serve exactly *addresses* (address -> tenant): start the new ones, stop the others."""
        asyncio.run_coroutine_threadsafe(self._listen(dict(addresses)), self._loop).result(10)

    def stop(self) -> None:
        self.listen({})
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _listen(self, addresses: dict[str, str]) -> None:
        for address in [a for a in self._listeners if a not in addresses]:
            udp, tcp = self._listeners.pop(address)
            udp.close()
            tcp.close()
        for address, tenant in addresses.items():
            if address in self._listeners:
                continue
            try:
                udp, _ = await self._loop.create_datagram_endpoint(lambda t=tenant: _Udp(self, t),
                                                                   local_addr=(address, 53))
                tcp = await asyncio.start_server(lambda r, w, t=tenant: self._tcp(r, w, t), address, 53)
            except OSError as exc:
                LOG.error("DNS for tenant %s cannot listen on %s:53: %s", tenant, address, exc)
                continue
            self._listeners[address] = (udp, tcp)  # type: ignore[assignment]
            LOG.info("DNS for tenant %s on %s:53", tenant, address)

    async def handle(self, data: bytes, tenant: str) -> bytes | None:
        """The reply to one query (None: not a query we can parse)."""
        self.queries += 1
        try:
            query = DNSRecord.parse(data)
        except Exception:  # dnslib raises its own DNSError and struct errors for garbage
            return None
        question = query.q
        answer = self.records.answer(tenant, str(question.qname), QTYPE.get(question.qtype, ""))
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
        return bytes(reply.pack())

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


def _servfail(query: DNSRecord) -> bytes:
    reply = query.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder, tenant: str) -> None:
        self.responder = responder
        self.tenant = tenant
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.responder.handle(data, self.tenant)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.done.done():
            self.done.set_result(data)
