"""CNI 1.1.0 wire format: parsing a request, rendering results and errors for every spec version.

Pure functions and values, no I/O, so that every version's shapes and every error path can be tested
without a runtime. What a request *means* for the agent (tenant, network, group, address) is decided
here too, so the handlers only deal with endpoints.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.cni.plugin import SUPPORTED_VERSIONS
from contiv_api.k8s_netpol import POD_TENANT_ANNOTATION

# Error codes (SPEC.md "Error"; 8 and 999 from libcni's pkg/types).
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_INVALID_NETNS = 8
ERR_TRY_AGAIN_LATER = 11
ERR_NOT_AVAILABLE = 50
ERR_INTERNAL = 999

COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_IFNAME_BAD = re.compile(r"[/\s:]")

# Pod labels choosing the Contiv network (Contiv's own label names, mgmtfn/k8splugin).
LABEL_TENANT = POD_TENANT_ANNOTATION
LABEL_NETWORK = "io.contiv.network"
LABEL_GROUP = "io.contiv.net-group"
# The capability containerd and CRI-O fill in runtimeConfig with the pod's annotations (declared in
# the conflist; kubelet has no other way to hand a pod's metadata to a plugin).
POD_ANNOTATIONS = "io.kubernetes.cri.pod-annotations"


class CniError(Exception):
    """A CNI error result: printed as JSON on stdout with a non-zero exit."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str) -> dict[str, Any]:
        return {"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details}


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def at_least(version: str, minimum: str) -> bool:
    return version_tuple(version) >= version_tuple(minimum)


@dataclass(frozen=True)
class Request:
    """One decoded invocation."""

    command: str
    version: str
    conf: dict[str, Any]
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    cni_args: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint_id(self) -> str:
        return endpoint_id(self.container_id, self.ifname)


def endpoint_id(container_id: str, ifname: str) -> str:
    """CNI endpoints are named ``<containerID>:<ifname>``. A container id never holds ``:``, so the
    name splits back unambiguously (GC needs that) and cannot collide with Docker's hex ids."""
    return f"{container_id}:{ifname}"


def split_endpoint_id(ep_id: str) -> tuple[str, str] | None:
    container_id, sep, ifname = ep_id.partition(":")
    if not sep or not ifname or not _NAME_RE.fullmatch(container_id):
        return None
    return container_id, ifname


def reply_version(stdin: str) -> str:
    """The version to answer errors in: the configuration's, when it is one we speak."""
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError):
        return SUPPORTED_VERSIONS[-1]
    return version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1]


def parse_cni_args(raw: str) -> dict[str, str]:
    """``K=V;K=V`` (CNI_ARGS); a pair without ``=`` is invalid environment."""
    out: dict[str, str] = {}
    for pair in filter(None, raw.split(";")):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, f"CNI_ARGS: invalid pair {pair!r}", "expected K=V;K=V")
        out[key] = value
    return out


def parse_request(env: dict[str, str], stdin: str) -> Request:
    """Validate environment and configuration. Raises CniError with the spec's codes; nothing is
    changed anywhere before this has accepted the request."""
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CniError(ERR_INVALID_ENV, "required environment variable CNI_COMMAND is missing")
    if command not in COMMANDS:
        raise CniError(ERR_INVALID_ENV, f"unknown CNI_COMMAND {command!r}", f"expected one of {', '.join(COMMANDS)}")
    try:
        conf = json.loads(stdin)
    except ValueError as exc:
        raise CniError(ERR_DECODE, "cannot decode the network configuration", str(exc)) from None
    if not isinstance(conf, dict):
        raise CniError(ERR_DECODE, "the network configuration must be a JSON object")
    version = conf.get("cniVersion", "0.1.0" if command == "VERSION" else "")
    if not isinstance(version, str) or not version:
        raise CniError(ERR_INVALID_CONFIG, "cniVersion is missing from the network configuration")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"incompatible CNI version {version}",
                       f"plugin supports {', '.join(SUPPORTED_VERSIONS)}")
    if command == "VERSION":
        return Request(command, version, conf)
    if command == "CHECK" and not at_least(version, "0.4.0"):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"config version {version} does not allow CHECK")
    if command in ("STATUS", "GC") and not at_least(version, "1.1.0"):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"config version {version} does not allow {command}")
    name = conf.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise CniError(ERR_INVALID_CONFIG, "network name is missing or invalid", f"name={name!r}")
    if command in ("STATUS", "GC"):
        return Request(command, version, conf)
    required = ["CNI_CONTAINERID", "CNI_IFNAME"] + (["CNI_NETNS"] if command in ("ADD", "CHECK") else [])
    missing = [v for v in required if not env.get(v)]
    if missing:
        raise CniError(ERR_INVALID_ENV, f"required environment variables missing: {', '.join(missing)}")
    container_id, ifname = env["CNI_CONTAINERID"], env["CNI_IFNAME"]
    if not _NAME_RE.fullmatch(container_id):
        raise CniError(ERR_INVALID_ENV, f"CNI_CONTAINERID {container_id!r} is invalid",
                       "alphanumeric first, then alphanumerics, '_', '.', '-'")
    if len(ifname) > 15 or ifname in (".", "..") or _IFNAME_BAD.search(ifname):
        raise CniError(ERR_INVALID_ENV, f"CNI_IFNAME {ifname!r} is not a valid interface name")
    return Request(command, version, conf, container_id, env.get("CNI_NETNS", ""), ifname,
                   parse_cni_args(env.get("CNI_ARGS", "")))


# -- what to create --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    tenant: str
    network: str
    group: str
    requested_ip: str
    labels: dict[str, str]
    container_name: str


def _cni_labels(conf: dict[str, Any]) -> dict[str, str]:
    args = conf.get("args")
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise CniError(ERR_INVALID_CONFIG, "args must be an object")
    cni = args.get("cni") or {}
    labels = cni.get("labels") if isinstance(cni, dict) else None
    if labels is None:
        return {}
    if not isinstance(labels, list) or not all(isinstance(x, dict) and isinstance(x.get("key"), str)
                                               and isinstance(x.get("value"), str) for x in labels):
        raise CniError(ERR_INVALID_CONFIG, "args.cni.labels must be a list of {key, value} strings")
    return {x["key"]: x["value"] for x in labels}


def _pod_annotations(conf: dict[str, Any]) -> dict[str, str]:
    """Contiv's labels among the pod's annotations (``runtimeConfig``, :data:`POD_ANNOTATIONS`).
    Only ``io.contiv.*`` keys are kept: other annotations are the pod's business, and can be large."""
    runtime = conf.get("runtimeConfig")
    annotations = runtime.get(POD_ANNOTATIONS) if isinstance(runtime, dict) else None
    if annotations is None:
        return {}
    if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in annotations.items()):
        raise CniError(ERR_INVALID_CONFIG, f"runtimeConfig {POD_ANNOTATIONS} must be an object of strings")
    return {k: v for k, v in annotations.items() if k.startswith("io.contiv.")}


def _requested_ips(conf: dict[str, Any], cni_args: dict[str, str]) -> list[str]:
    """Static addresses: runtimeConfig.ips (capability), args.cni.ips, legacy CNI_ARGS IP=."""
    candidates: list[Any] = []
    runtime = conf.get("runtimeConfig") or {}
    if isinstance(runtime, dict) and runtime.get("ips"):
        candidates += runtime["ips"] if isinstance(runtime["ips"], list) else [runtime["ips"]]
    args = conf.get("args") or {}
    cni = args.get("cni") if isinstance(args, dict) else None
    if isinstance(cni, dict) and cni.get("ips"):
        candidates += cni["ips"] if isinstance(cni["ips"], list) else [cni["ips"]]
    if cni_args.get("IP"):
        candidates += cni_args["IP"].split(",")
    out = []
    for value in candidates:
        try:
            iface = ipaddress.ip_interface(str(value).strip())
        except ValueError:
            raise CniError(ERR_INVALID_CONFIG, f"requested IP {value!r} is not an address") from None
        if iface.version != 4:
            raise CniError(ERR_UNSUPPORTED_FIELD, f"requested IP {value}: only IPv4 is supported", "ips")
        out.append(str(iface.ip))
    return out


def placement(req: Request) -> Placement:
    """Tenant, network and group come from the network configuration (``tenant``, ``network``,
    ``group``; the network defaults to the configuration's name) unless the pod overrides them with
    Contiv's labels, given as pod annotations (``runtimeConfig``), ``args.cni.labels`` or CNI_ARGS;
    a label that is absent falls back to the configuration, as in Contiv."""
    conf, cni_args = req.conf, req.cni_args
    labels = {**_pod_annotations(conf), **_cni_labels(conf)}
    for key in ("K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"):
        if cni_args.get(key):
            labels[key] = cni_args[key]

    def pick(label: str, key: str, default: str) -> str:
        value = labels.get(label) or cni_args.get(label) or conf.get(key) or default
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            raise CniError(ERR_INVALID_CONFIG, f"{key} {value!r} is not a valid name")
        return value

    tenant = pick(LABEL_TENANT, "tenant", "default")
    network = pick(LABEL_NETWORK, "network", conf["name"])
    group = labels.get(LABEL_GROUP) or cni_args.get(LABEL_GROUP) or conf.get("group") or ""
    if not isinstance(group, str) or (group and not _NAME_RE.fullmatch(group)):
        raise CniError(ERR_INVALID_CONFIG, f"group {group!r} is not a valid name")
    ips = _requested_ips(conf, cni_args)
    name = cni_args.get("K8S_POD_NAME", "")
    if name and cni_args.get("K8S_POD_NAMESPACE"):
        name = f"{cni_args['K8S_POD_NAMESPACE']}/{name}"
    return Placement(tenant, network, group, ips[0] if ips else "", labels, name)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """What the plugin created for one ADD, independent of the result version."""

    container_ifname: str
    mac: str
    mtu: int
    sandbox: str
    host_ifname: str
    ip: str
    prefix_len: int
    gateway: str


def _dns(conf: dict[str, Any]) -> dict[str, Any]:
    dns = conf.get("dns")
    if not isinstance(dns, dict):
        return {}
    return {k: dns[k] for k in ("nameservers", "domain", "search", "options") if dns.get(k)}


def render_result(version: str, att: Attachment, conf: dict[str, Any]) -> dict[str, Any]:
    """The ADD result in the shape of *version*, merged after ``prevResult`` if there is one."""
    cidr = f"{att.ip}/{att.prefix_len}"
    routes = [{"dst": "0.0.0.0/0", "gw": att.gateway}] if att.gateway else []
    dns = _dns(conf)
    if not at_least(version, "0.3.0"):
        ip4: dict[str, Any] = {"ip": cidr}
        if att.gateway:
            ip4["gateway"] = att.gateway
            ip4["routes"] = routes
        out: dict[str, Any] = {"cniVersion": version, "ip4": ip4}
        if dns:
            out["dns"] = dns
        return out
    prev = conf.get("prevResult") if isinstance(conf.get("prevResult"), dict) else {}
    interfaces = list(prev.get("interfaces") or [])
    host_if: dict[str, Any] = {"name": att.host_ifname}
    cont_if: dict[str, Any] = {"name": att.container_ifname, "mac": att.mac, "sandbox": att.sandbox}
    if at_least(version, "1.1.0"):
        cont_if["mtu"] = att.mtu
    interfaces += [host_if, cont_if]
    ip: dict[str, Any] = {"address": cidr, "interface": len(interfaces) - 1}
    if att.gateway:
        ip["gateway"] = att.gateway
    if not at_least(version, "1.0.0"):
        ip = {"version": "4", **ip}
    result: dict[str, Any] = {"cniVersion": version, "interfaces": interfaces,
                              "ips": [*list(prev.get("ips") or []), ip],
                              "routes": list(prev.get("routes") or []) + routes}
    merged_dns = {**(prev.get("dns") or {}), **dns}
    if merged_dns:
        result["dns"] = merged_dns
    return result


def prev_result_addresses(conf: dict[str, Any]) -> set[str]:
    """Addresses (without prefix) that prevResult claims, in any result version."""
    prev = conf.get("prevResult")
    if not isinstance(prev, dict):
        return set()
    out = set()
    for entry in prev.get("ips") or []:
        if isinstance(entry, dict) and isinstance(entry.get("address"), str):
            out.add(entry["address"].split("/")[0])
    ip4 = prev.get("ip4")
    if isinstance(ip4, dict) and isinstance(ip4.get("ip"), str):
        out.add(ip4["ip"].split("/")[0])
    return out


def valid_attachments(conf: dict[str, Any]) -> set[tuple[str, str]]:
    raw = conf.get("cni.dev/valid-attachments", [])
    if not isinstance(raw, list) or not all(isinstance(a, dict) and isinstance(a.get("containerID"), str)
                                            and isinstance(a.get("ifname"), str) for a in raw):
        raise CniError(ERR_INVALID_CONFIG, "cni.dev/valid-attachments must be a list of {containerID, ifname}")
    return {(a["containerID"], a["ifname"]) for a in raw}
