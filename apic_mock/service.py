"""The mock APIC as a service object, independent of HTTP.

It owns the tree and every component that works on it (configurator, query engine, auth,
subscriptions, faults, stats) and implements each APIC operation and admin action as a method.
:mod:`apic_mock.app` only translates HTTP to these calls, which keeps the behaviour testable and
the web framework replaceable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apic_mock import initial, persistence
from apic_mock.audit import AuditLog
from apic_mock.auth import Auth, Identity, Session
from apic_mock.config import Configurator, Outcome, modified_reply
from apic_mock.errors import ApicError, envelope
from apic_mock.faults import FaultInjector
from apic_mock.query import QueryEngine, QueryOptions, QueryScope, parse_options
from apic_mock.render import render
from apic_mock.stats import RequestStats
from apic_mock.subscriptions import SubscriptionHub
from apic_mock.tree import Tree

log = logging.getLogger("apic_mock.service")

DEFAULT_VERSION = "5.2(7f)"


@dataclass
class Settings:
    """Everything that shapes one mock instance (the CLI and the test helper fill it in)."""

    users: dict[str, str] = field(default_factory=lambda: {"admin": "password"})
    version: str = DEFAULT_VERSION
    refresh_timeout: int = 600
    accept_unsigned: bool = False
    state_file: Path | None = None
    seeds: list[Path | list[dict[str, Any]]] = field(default_factory=list)
    demo_fabric: bool = False
    max_result: int = 100_000
    secure_cookie: bool = True


class ApicService:
    """One emulated APIC."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tree = Tree()
        self.configurator = Configurator(self.tree)
        self.engine = QueryEngine(self.tree, settings.max_result)
        self.auth = Auth(
            self.tree, refresh_timeout=settings.refresh_timeout, accept_unsigned=settings.accept_unsigned
        )
        self.hub = SubscriptionHub(self.tree)
        self.audit = AuditLog()
        self.faults = FaultInjector()
        self.stats = RequestStats()
        state = settings.state_file
        if state is not None and state.exists():
            self.tree.clear()
            self._load(persistence.load(state))
            self._load(initial.user_objects(settings.users))  # CLI users win over the stored ones
            log.info("state loaded", extra={"path": str(state), "objects": len(self.tree)})
        else:
            self.reset_tree()

    # --- tree lifecycle ---------------------------------------------------------------------------
    def _load(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.configurator.post("", item, privileged=True)

    def reset_tree(self) -> None:
        """Back to the initial objects plus seeds (also what a fresh start does)."""
        self.tree.clear()
        self.hub.clear()
        self.audit.clear()
        self._load(initial.base_objects(self.settings.users))
        if self.settings.demo_fabric:
            self._load(initial.demo_fabric(self.settings.version))
        for seed in self.settings.seeds:
            self._load(persistence.load(seed) if isinstance(seed, Path) else seed)
        self._persist()

    def dump(self, *, secrets: bool = False) -> dict[str, Any]:
        """The whole tree as an envelope (the format ``--seed``/``--state`` read)."""
        items = [
            render(self.tree, mo, subtree="full", secrets=secrets) for mo in self.tree.root.children.values()
        ]
        return envelope(items)

    def _persist(self) -> None:
        if self.settings.state_file is not None:
            persistence.save(self.settings.state_file, self.dump(secrets=True))

    def _committed(self, outcome: Outcome) -> None:
        """After a successful write: push events and save state."""
        if outcome.changes:
            self.hub.publish(outcome.events())
            self._persist()

    # --- authentication ---------------------------------------------------------------------------
    def login_reply(self, session: Session) -> dict[str, Any]:
        """aaaLogin/aaaRefresh reply body (Cobra needs token, refreshTimeoutSeconds and version)."""
        attrs = {
            "token": session.token,
            "siteFingerprint": "apicmock",
            "refreshTimeoutSeconds": str(self.settings.refresh_timeout),
            "maximumLifetimeSeconds": str(self.auth.max_lifetime),
            "guiIdleTimeoutSeconds": "1200",
            "restTimeoutSeconds": "90",
            "creationTime": str(int(session.created)),
            "firstLoginTime": str(int(session.created)),
            "userName": session.user,
            "remoteUser": "false",
            "unixUserId": "15374",
            "sessionId": session.sid,
            "lastName": "",
            "firstName": "",
            "version": self.settings.version,
            "buildTime": "Sat Jan 01 00:00:00 UTC 2022",
            "node": "topology/pod-1/node-1",
        }
        domain = {
            "aaaUserDomain": {
                "attributes": {"name": "all", "rolesR": "admin", "rolesW": "admin"},
                "children": [
                    {"aaaReadRoles": {"attributes": {}}},
                    {
                        "aaaWriteRoles": {
                            "attributes": {},
                            "children": [{"role": {"attributes": {"name": "admin"}}}],
                        }
                    },
                ],
            }
        }
        return envelope([{"aaaLogin": {"attributes": attrs, "children": [domain]}}])

    def login(self, body: Any) -> Session:
        """aaaLogin: ``{"aaaUser":{"attributes":{"name":..,"pwd":..}}}``."""
        if not isinstance(body, dict) or "aaaUser" not in body or not isinstance(body["aaaUser"], dict):
            raise ApicError(400, "invalid data: expected an aaaUser element")
        attrs = body["aaaUser"].get("attributes")
        if not isinstance(attrs, dict):
            raise ApicError(400, "invalid data: aaaUser needs attributes")
        user = self.auth.check_password(str(attrs.get("name", "")), str(attrs.get("pwd", "")))
        return self.auth.login(user)

    def logout(self, identity: Identity) -> None:
        if identity.session is not None:
            self.auth.logout(identity.session)
            self.hub.drop_session(identity.session.sid)

    # --- queries ----------------------------------------------------------------------------------
    def _audit(self, identity: Identity | None, outcome: Outcome) -> None:
        if identity is not None and outcome.changes:
            self.audit.record(identity.user, identity.session.sid if identity.session else "", outcome)

    def query(self, scope: QueryScope, params: Mapping[str, str], identity: Identity) -> dict[str, Any]:
        """A DN or class query, with ``subscription=yes`` handling; ``aaaModLR`` reads the audit log."""
        opts = parse_options(params)
        if scope.cls == "aaaModLR" and scope.dn is None:
            found = self.audit.query(self.engine.predicate(opts.target_filter))
            size = opts.page_size or len(found)
            page = found[(opts.page or 0) * size : ((opts.page or 0) + 1) * size]
            return envelope([render(self.tree, mo) for mo in page], len(found))
        imdata, total = self.engine.run(scope, opts)
        reply = envelope(imdata, total)
        if opts.subscription == "yes":
            reply["subscriptionId"] = self._subscribe(scope, opts, identity)
        return reply

    def _subscribe(self, scope: QueryScope, opts: QueryOptions, identity: Identity) -> str:
        if identity.session is None:
            raise ApicError(400, "Subscriptions need a login session (aaaLogin or webtokenSession)")
        return self.hub.subscribe(
            identity.session.sid, scope, opts, self.engine.predicate(opts.target_filter)
        )

    def scope_dn(self, dn: str) -> QueryScope:
        return self.engine.scope_for_dn(dn)

    def scope_class(self, cls: str, within: str | None = None) -> QueryScope:
        return self.engine.scope_for_class(cls, within)

    # --- configuration ----------------------------------------------------------------------------
    def post(
        self, url_dn: str, body: Any, params: Mapping[str, str], *, privileged: bool = False,
        identity: Identity | None = None,
    ) -> dict[str, Any]:
        """Config POST; the reply follows ``rsp-subtree`` (empty, modified objects, or full tree)."""
        opts = parse_options(params, post=True)
        outcome = self.configurator.post(url_dn, body, privileged=privileged)
        self._committed(outcome)
        self._audit(identity, outcome)
        if opts.rsp_subtree == "modified":
            return envelope(modified_reply(self.tree, outcome))
        if opts.rsp_subtree in ("full", "children"):
            items = [
                render(self.tree, mo, subtree=opts.rsp_subtree)
                for dn in outcome.roots
                if (mo := self.tree.get(dn)) is not None
            ]
            return envelope(items)
        return envelope([])

    def delete(self, dn: str, params: Mapping[str, str], *, privileged: bool = False,
               identity: Identity | None = None) -> dict[str, Any]:
        """HTTP DELETE of a subtree; absent DNs are fine, as on APIC."""
        opts = parse_options(params, post=True)
        outcome = self.configurator.delete(dn, privileged=privileged)
        self._committed(outcome)
        self._audit(identity, outcome)
        if opts.rsp_subtree == "modified":
            return envelope(modified_reply(self.tree, outcome))
        return envelope([])

    # --- admin ------------------------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> int:
        """Load more objects with fabric privileges (read-only classes, operational properties)."""
        total = 0
        for item in items:
            outcome = self.configurator.post("", item, privileged=True)
            self._committed(outcome)
            total += len(outcome.changes)
        return total

    def add_endpoint(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Learn an endpoint (``fvCEp``) under an EPG, the way a leaf reports one to the APIC."""
        epg = str(spec.get("epg", ""))
        mac = str(spec.get("mac", "")).upper()
        target = self.tree.get(epg)
        if target is None or target.cls != "fvAEPg":
            raise ApicError(400, f"no EPG {epg}")
        ip = str(spec.get("ip", "0.0.0.0"))
        attrs = {
            "mac": mac,
            "ip": ip,
            "encap": str(spec.get("encap", "unknown")),
            "name": mac,
            "lcC": "learned",
            "fabricPathDn": str(spec.get("path", "")),
        }
        children = [{"fvIp": {"attributes": {"addr": ip}}}] if ip not in ("", "0.0.0.0") else []
        item = {"fvCEp": {"attributes": attrs, "children": children}}
        outcome = self.configurator.post(epg, item, privileged=True)
        self._committed(outcome)
        return {"dn": f"{epg}/cep-{mac}", "changes": len(outcome.changes)}

    def remove(self, dn: str) -> int:
        """Privileged delete (endpoints ageing out, fabric nodes leaving)."""
        outcome = self.configurator.delete(dn, privileged=True)
        self._committed(outcome)
        return len(outcome.changes)

    def status(self) -> dict[str, Any]:
        return {
            "objects": len(self.tree),
            "sessions": len(self.auth.sessions),
            "subscriptions": len(self.hub.subs),
            "websockets": sum(len(q) for q in self.hub.sockets.values()),
            "faults": [r.describe() for r in self.faults.rules],
            "uptime": time.time() - self.tree.started,
            "version": self.settings.version,
        }
