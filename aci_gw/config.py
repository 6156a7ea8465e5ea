"""Gateway configuration: Contiv's environment variables, checked once at startup, plus the per-request
merge with ``gw-config``.

Why check everything up front: Contiv's gateway read the environment lazily and failed on the first
push with a stack trace. Here a bad or missing setting is a :class:`ConfigError` with one line naming
the variable, and the CLI exits with it before listening.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from contiv_api.aci_gw_payload import GwConfigOverride

DEFAULT_KEY_FILE = "/aciconfig/aci.key"
DEFAULT_LISTEN = "127.0.0.1:5000"
SANITY = "SANITY"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_NODE = re.compile(r"^topology/pod-\d+/node-\d+$")
_PATH = re.compile(r"^topology/pod-\d+/(paths-\d+|protpaths-\d+-\d+)(/extpaths-\d+)?/pathep-\[[^\]]+\]$")
_DOMAIN_NAME = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
_VMM_DN = re.compile(r"^uni/vmmp-[A-Za-z]+/dom-[a-zA-Z0-9_.:-]{1,64}$")
_BD_DN = re.compile(r"^uni/tn-([a-zA-Z0-9_.:-]{1,64})/BD-([a-zA-Z0-9_.:-]{1,64})$")


class ConfigError(ValueError):
    """A bad or missing setting; the message is one line naming it."""


@dataclass(frozen=True)
class ApicConnection:
    """How to reach and authenticate to the APIC."""

    url: str
    username: str
    password: str | None
    cert_dn: str | None
    private_key_pem: bytes | None
    verify_tls: bool
    ca_bundle: str | None
    sdk: str  # auto | rest | cobra
    timeout: float
    retries: int
    backoff: float

    @property
    def uses_certificate(self) -> bool:
        return self.private_key_pem is not None

    def __repr__(self) -> str:  # never show secrets, even in a debugger or a log of the object
        return (
            f"ApicConnection(url={self.url!r}, username={self.username!r}, "
            f"auth={'certificate' if self.uses_certificate else 'password'}, verify_tls={self.verify_tls})"
        )


@dataclass(frozen=True)
class FabricSettings:
    """Where EPGs attach and how policy is enforced: from the environment, overridden per request."""

    physical_domain: str | None = None
    vmm_domain: str | None = None  # a name (VMware, as Contiv) or a full ``uni/vmmp-X/dom-Y`` DN
    node_bindings: tuple[str, ...] = ()
    path_bindings: tuple[str, ...] = ()
    bridge_domain: str | None = None  # APIC_EPG_BRIDGE_DOMAIN: every EPG binds to this BD
    enforce_policies: bool = True
    include_common_tenant: bool = False
    vrf: str | None = None  # the VRF to use in a tenant holding several

    @property
    def bridge_domain_ref(self) -> tuple[str | None, str] | None:
        """APIC_EPG_BRIDGE_DOMAIN as (tenant or None, BD name). Contiv used the value as a name
        although its docs call it a DN; both forms are accepted."""
        if not self.bridge_domain:
            return None
        match = _BD_DN.match(self.bridge_domain)
        return (match.group(1), match.group(2)) if match else (None, self.bridge_domain)

    @property
    def vmm_domain_dn(self) -> str | None:
        if not self.vmm_domain:
            return None
        if self.vmm_domain.startswith("uni/"):
            return self.vmm_domain
        return f"uni/vmmp-VMware/dom-{self.vmm_domain}"

    def validate(self) -> None:
        """Raise ConfigError when the fabric attachment is incomplete or malformed."""
        if not self.physical_domain and not self.vmm_domain:
            raise ConfigError("no physical or VMM domain configured (APIC_PHYS_DOMAIN, APIC_VMM_DOMAIN "
                              "or gw-config physicalDomain)")
        if self.physical_domain and not self.node_bindings and not self.path_bindings:
            raise ConfigError("physical domain set but no node or path bindings (APIC_LEAF_NODE or "
                              "gw-config nodeBindings/pathBindings)")
        self.validate_formats()

    def validate_formats(self) -> None:
        """Check the shape of every value that is set (completeness is checked per request)."""
        if self.physical_domain and not _DOMAIN_NAME.match(self.physical_domain):
            raise ConfigError(f"invalid physical domain name {self.physical_domain!r}")
        if self.vmm_domain and not (_VMM_DN.match(self.vmm_domain) or _DOMAIN_NAME.match(self.vmm_domain)):
            raise ConfigError(f"invalid VMM domain {self.vmm_domain!r}")
        bd = self.bridge_domain
        if bd and not (_DOMAIN_NAME.match(bd) or _BD_DN.match(bd)):
            raise ConfigError(f"invalid bridge domain {self.bridge_domain!r} (a name or uni/tn-T/BD-NAME)")
        if self.vrf and not _DOMAIN_NAME.match(self.vrf):
            raise ConfigError(f"invalid VRF name {self.vrf!r}")
        for node in self.node_bindings:
            if not _NODE.match(node):
                raise ConfigError(f"invalid node binding {node!r} (expected topology/pod-N/node-N)")
        for path in self.path_bindings:
            if not _PATH.match(path):
                raise ConfigError(
                    f"invalid path binding {path!r} (expected topology/pod-N/paths-N/pathep-[ethX/Y])"
                )

    def merged(self, override: GwConfigOverride | None) -> FabricSettings:
        """Request values win field by field; absent or empty ones keep the environment's."""
        if override is None:
            return self

        def pick(new, old):  # two values of the same field
            return old if new is None else new

        return FabricSettings(
            physical_domain=pick(override.physical_domain, self.physical_domain),
            vmm_domain=pick(override.vmm_domain, self.vmm_domain),
            node_bindings=pick(override.node_bindings, self.node_bindings),
            path_bindings=pick(override.path_bindings, self.path_bindings),
            bridge_domain=self.bridge_domain,
            enforce_policies=pick(override.enforce_policies, self.enforce_policies),
            include_common_tenant=pick(override.include_common_tenant, self.include_common_tenant),
            vrf=pick(override.vrf, self.vrf),
        )


@dataclass(frozen=True)
class DriftSettings:
    """The drift watch: on or off, repair or report only, subscription lifetime, repair rate."""

    watch: bool = True  # APIC_DRIFT_WATCH
    repair: bool = True  # APIC_DRIFT_REPAIR=no: report drift (log, metrics, read API), never write
    subscription_timeout: int = 60  # APIC_SUBSCRIPTION_TIMEOUT: seconds; refreshed every third of it
    repair_interval: float = 1.0  # APIC_DRIFT_REPAIR_INTERVAL: at most one repair per tenant per this


@dataclass(frozen=True)
class GatewaySettings:
    apic: ApicConnection | None  # None in dry-run mode (APIC_URL=SANITY)
    fabric: FabricSettings
    listen_host: str
    listen_port: int
    token: str | None
    log_level: str
    drift: DriftSettings = DriftSettings()

    @property
    def dry_run(self) -> bool:
        return self.apic is None


def _yes_no(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("yes", "true", "1", "on"):
        return True
    if raw in ("no", "false", "0", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected yes or no")


def _number(env: Mapping[str, str], name: str, default: float, kind: type = float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: must not be negative")
    return value


def parse_listen_url(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an ``http://`` prefix is tolerated) into its parts."""
    raw = text.strip()
    parsed = urlsplit(raw if "//" in raw else f"//{raw}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None:
        raise ConfigError(f"--listen-url {text!r}: expected HOST:PORT")
    return parsed.hostname, port


def _read_key(path: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"APIC_LOCAL_KEY_FILE {path}: cannot read ({exc.strerror})") from None
    try:
        load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"APIC_LOCAL_KEY_FILE {path}: not an unencrypted PEM private key") from None
    return data


def load_apic_connection(env: Mapping[str, str]) -> ApicConnection | None:
    """APIC endpoint and credentials; None for Contiv's dry-run value ``APIC_URL=SANITY``."""
    url = env.get("APIC_URL", "").strip()
    if not url:
        raise ConfigError("APIC_URL is not set (https://apic.example or SANITY for dry-run)")
    if url == SANITY:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"APIC_URL={url!r}: expected http(s)://host[:port]")
    username = env.get("APIC_USERNAME", "").strip()
    if not username:
        raise ConfigError("APIC_USERNAME is not set")
    cert_dn = env.get("APIC_CERT_DN", "").strip() or None
    password = env.get("APIC_PASSWORD") or None
    key_pem = None
    if cert_dn:
        key_pem = _read_key(env.get("APIC_LOCAL_KEY_FILE", "").strip() or DEFAULT_KEY_FILE)
    elif password is None:
        raise ConfigError("no APIC credentials: set APIC_PASSWORD, or APIC_CERT_DN with APIC_LOCAL_KEY_FILE")
    ca_bundle = env.get("APIC_CA_BUNDLE", "").strip() or None
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise ConfigError(f"APIC_CA_BUNDLE {ca_bundle}: no such file")
    sdk = env.get("APIC_SDK", "auto").strip().lower() or "auto"
    if sdk not in ("auto", "rest", "cobra"):
        raise ConfigError(f"APIC_SDK={sdk!r}: expected auto, rest or cobra")
    return ApicConnection(
        url=url.rstrip("/"),
        username=username,
        password=password,
        cert_dn=cert_dn,
        private_key_pem=key_pem,
        verify_tls=_yes_no(env, "APIC_VERIFY_TLS", True),
        ca_bundle=ca_bundle,
        sdk=sdk,
        timeout=_number(env, "APIC_TIMEOUT", 30.0),
        retries=int(_number(env, "APIC_RETRIES", 4, int)),
        backoff=_number(env, "APIC_BACKOFF", 0.25),
    )


def load_fabric(env: Mapping[str, str]) -> FabricSettings:
    """Fabric defaults from Contiv's variables; APIC_LEAF_NODE values containing ``pathep`` are paths."""
    leaves = tuple(p.strip() for p in env.get("APIC_LEAF_NODE", "").split(",") if p.strip())
    fabric = FabricSettings(
        physical_domain=env.get("APIC_PHYS_DOMAIN", "").strip() or None,
        vmm_domain=env.get("APIC_VMM_DOMAIN", "").strip() or None,
        node_bindings=tuple(p for p in leaves if "pathep" not in p),
        path_bindings=tuple(p for p in leaves if "pathep" in p),
        bridge_domain=env.get("APIC_EPG_BRIDGE_DOMAIN", "").strip() or None,
        enforce_policies=not _yes_no(env, "APIC_CONTRACTS_UNRESTRICTED_MODE", False),
        include_common_tenant=_yes_no(env, "APIC_INC_COMMON_TENANT", False),
        vrf=env.get("APIC_VRF", "").strip() or None,
    )
    # Only the shape is checked here: gw-config in each request may complete the rest.
    try:
        fabric.validate_formats()
    except ConfigError as exc:
        raise ConfigError(f"environment: {exc}") from None
    return fabric


def load_drift(env: Mapping[str, str]) -> DriftSettings:
    timeout = int(_number(env, "APIC_SUBSCRIPTION_TIMEOUT", 60, int))
    if not 3 <= timeout <= 3600:
        raise ConfigError(f"APIC_SUBSCRIPTION_TIMEOUT={timeout}: expected 3 to 3600 seconds")
    return DriftSettings(
        watch=_yes_no(env, "APIC_DRIFT_WATCH", True),
        repair=_yes_no(env, "APIC_DRIFT_REPAIR", True),
        subscription_timeout=timeout,
        repair_interval=_number(env, "APIC_DRIFT_REPAIR_INTERVAL", 1.0),
    )


def load_settings(
    env: Mapping[str, str], listen_url: str | None = None, token: str | None = None
) -> GatewaySettings:
    """Everything the gateway needs, or ConfigError on the first bad value."""
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
    host, port = parse_listen_url(listen_url or env.get("ACI_GW_LISTEN_URL", "") or DEFAULT_LISTEN)
    return GatewaySettings(
        apic=load_apic_connection(env),
        fabric=load_fabric(env),
        listen_host=host,
        listen_port=port,
        token=token or env.get("ACI_GW_TOKEN") or None,
        log_level=log_level,
        drift=load_drift(env),
    )
