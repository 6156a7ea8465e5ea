"""CNI protocol tests: the real ``contiv`` binary against the agent-side server (with an in-memory
EndpointOps), for every verb, every spec version and every error path, with exact reply shapes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.cni.plugin import SUPPORTED_VERSIONS
from contiv_api.mac import candidates
from testbed.cni import VERSIONS, CniReply, invoke
from tests.frontends.fake_ops import EndpointError, FakeEndpointOps

CID = "0123abcd"


@pytest.fixture
def netns(tmp_path: Path) -> str:
    """A path standing for the container's netns (the fake datapath never enters it)."""
    path = tmp_path / "netns-c1"
    path.write_text("")
    return str(path)


@pytest.fixture
def run(cni_bin: Path, cni_socket: str, netns: str):
    def _run(command: str, conf: dict[str, Any] | str, **kw: Any) -> CniReply:
        kw.setdefault("container_id", CID)
        kw.setdefault("netns", netns)
        kw.setdefault("extra_env", {"CONTIV_CNI_SOCKET": cni_socket})
        return invoke(cni_bin, command, conf, **kw)

    return _run


def conf(version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "net1", "type": "contiv", **extra}


def expected_result(version: str, netns: str, ip: str = "10.9.0.1", dns: dict | None = None) -> dict[str, Any]:
    mac = next(candidates(ip))  # what the fake's "netmaster" assigns
    if version in ("0.1.0", "0.2.0"):
        out: dict[str, Any] = {"cniVersion": version, "ip4": {"ip": f"{ip}/24", "gateway": "10.9.0.254",
                                                              "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.254"}]}}
        return {**out, "dns": dns} if dns else out
    cont: dict[str, Any] = {"name": "eth0", "mac": mac, "sandbox": netns}
    if version == "1.1.0":
        cont["mtu"] = 1450
    ipc: dict[str, Any] = {"address": f"{ip}/24", "interface": 1, "gateway": "10.9.0.254"}
    if version in ("0.3.0", "0.3.1", "0.4.0"):
        ipc = {"version": "4", **ipc}
    out = {"cniVersion": version, "interfaces": [{"name": "ve" + f"{CID}:eth0"[:11]}, cont], "ips": [ipc],
           "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.254"}]}
    return {**out, "dns": dns} if dns else out


# -- VERSION ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_version_reports_every_spec_version(run, version: str) -> None:
    reply = run("VERSION", {"cniVersion": version})
    assert reply.code == 0, reply
    assert reply.out == {"cniVersion": version, "supportedVersions": list(VERSIONS)}


def test_version_list_is_the_specs() -> None:
    assert SUPPORTED_VERSIONS == VERSIONS


def test_version_works_with_the_agent_down(cni_bin: Path, tmp_path: Path) -> None:
    reply = invoke(cni_bin, "VERSION", {"cniVersion": "1.0.0"},
                   extra_env={"CONTIV_CNI_SOCKET": str(tmp_path / "nothing.sock")})
    assert reply.code == 0
    assert reply.out["supportedVersions"] == list(VERSIONS)


# -- ADD / CHECK / DEL across versions -------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del_every_version(run, fake_ops: FakeEndpointOps, netns: str, version: str) -> None:
    dns = {"nameservers": ["10.9.0.53"], "search": ["svc.local"]}
    add = run("ADD", conf(version, dns=dns))
    assert add.code == 0, add
    assert add.out == expected_result(version, netns, dns=dns)
    (_, req), = fake_ops.mutations()
    assert (req.endpoint_id, req.tenant, req.network, req.netns, req.ifname) == (
        f"{CID}:eth0", "default", "net1", netns, "eth0")

    check = run("CHECK", conf(version, prevResult=add.out))
    if version in ("0.1.0", "0.2.0", "0.3.0", "0.3.1"):
        assert (check.code, check.error_code) == (1, 1)
        assert check.out["msg"] == f"config version {version} does not allow CHECK"
    else:
        assert (check.code, check.out) == (0, None), check

    for _ in range(2):  # DEL is idempotent
        rm = run("DEL", conf(version, prevResult=add.out))
        assert (rm.code, rm.out) == (0, None), rm
    assert fake_ops.endpoints == {}


def test_del_without_netns_and_unknown_container_succeeds(run, fake_ops: FakeEndpointOps) -> None:
    reply = run("DEL", conf(), netns="", container_id="never-added")
    assert (reply.code, reply.out) == (0, None)
    assert fake_ops.mutations() == [("delete", "never-added:eth0")]


def test_add_is_idempotent_for_a_retried_request(run, fake_ops: FakeEndpointOps) -> None:
    first, second = run("ADD", conf()), run("ADD", conf())
    assert first.out == second.out
    assert len(fake_ops.endpoints) == 1


def test_endpoint_id_is_container_id_and_ifname(run, fake_ops: FakeEndpointOps) -> None:
    assert run("ADD", conf(), ifname="net0").code == 0
    assert set(fake_ops.endpoints) == {f"{CID}:net0"}


# -- choosing the network and the address ----------------------------------------------------------


def test_tenant_network_group_from_network_config(run, fake_ops: FakeEndpointOps) -> None:
    fake_ops.networks["blue:web"] = "10.8.0.0/24"
    assert run("ADD", conf(tenant="blue", network="web", group="front")).code == 0
    (_, req), = fake_ops.mutations()
    assert (req.tenant, req.network, req.group) == ("blue", "web", "front")


def test_pod_args_and_labels_override_the_config(run, fake_ops: FakeEndpointOps) -> None:
    fake_ops.networks["red:db"] = "10.7.0.0/24"
    cni_args = ("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pg-0;"
                "K8S_POD_INFRA_CONTAINER_ID=" + CID + ";io.contiv.tenant=red")
    args = {"cni": {"labels": [{"key": "io.contiv.network", "value": "db"},
                               {"key": "io.contiv.net-group", "value": "backend"}]}}
    reply = run("ADD", conf(tenant="blue", args=args), cni_args=cni_args)
    assert reply.code == 0, reply
    (_, req), = fake_ops.mutations()
    assert (req.tenant, req.network, req.group, req.container_name) == ("red", "db", "backend", "shop/pg-0")
    assert req.labels["K8S_POD_NAMESPACE"] == "shop"
    assert req.labels["K8S_POD_INFRA_CONTAINER_ID"] == CID


def test_pod_annotations_choose_the_network_and_absent_ones_fall_back(run, fake_ops: FakeEndpointOps) -> None:
    """containerd passes the pod's annotations in runtimeConfig (the io.kubernetes.cri.pod-annotations
    capability); Contiv's io.contiv.* among them override the configuration, one by one."""
    fake_ops.networks["red:web"] = "10.7.0.0/24"
    annotations = {"io.contiv.tenant": "red", "io.contiv.net-group": "backend", "team": "payments"}
    reply = run("ADD", conf(tenant="blue", network="web", group="front",
                            runtimeConfig={"io.kubernetes.cri.pod-annotations": annotations}))
    assert reply.code == 0, reply
    (_, req), = fake_ops.mutations()
    assert (req.tenant, req.network, req.group) == ("red", "web", "backend")
    assert "team" not in req.labels  # only Contiv's own annotations are recorded


def test_args_labels_win_over_pod_annotations(run, fake_ops: FakeEndpointOps) -> None:
    fake_ops.networks["default:db"] = "10.7.0.0/24"
    args = {"cni": {"labels": [{"key": "io.contiv.network", "value": "db"}]}}
    runtime = {"io.kubernetes.cri.pod-annotations": {"io.contiv.network": "web"}}
    assert run("ADD", conf(args=args, runtimeConfig=runtime)).code == 0
    (_, req), = fake_ops.mutations()
    assert req.network == "db"


@pytest.mark.parametrize("where", ["runtimeConfig", "args", "CNI_ARGS"])
def test_static_address(run, fake_ops: FakeEndpointOps, where: str) -> None:
    kw: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if where == "runtimeConfig":
        extra["runtimeConfig"] = {"ips": ["10.9.0.77/24"]}
    elif where == "args":
        extra["args"] = {"cni": {"ips": ["10.9.0.77"]}}
    else:
        kw["cni_args"] = "IgnoreUnknown=1;IP=10.9.0.77"
    reply = run("ADD", conf(**extra), **kw)
    assert reply.code == 0, reply
    assert reply.out["ips"][0]["address"] == "10.9.0.77/24"


def test_plugin_list_appends_to_prev_result(run) -> None:
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "lo0", "sandbox": "/x"}],
            "ips": [{"address": "192.168.1.5/24", "interface": 0}], "routes": [{"dst": "192.168.0.0/16"}],
            "dns": {"nameservers": ["1.1.1.1"]}}
    reply = run("ADD", conf("1.0.0", prevResult=prev))
    assert reply.code == 0, reply
    out = reply.out
    assert [i["name"] for i in out["interfaces"]] == ["lo0", "ve" + f"{CID}:eth0"[:11], "eth0"]
    assert out["ips"] == [{"address": "192.168.1.5/24", "interface": 0},
                          {"address": "10.9.0.1/24", "interface": 2, "gateway": "10.9.0.254"}]
    assert out["routes"] == [{"dst": "192.168.0.0/16"}, {"dst": "0.0.0.0/0", "gw": "10.9.0.254"}]
    assert out["dns"] == {"nameservers": ["1.1.1.1"]}


# -- CHECK -----------------------------------------------------------------------------------------


def test_check_fails_when_the_datapath_lost_the_endpoint(run, fake_ops: FakeEndpointOps) -> None:
    add = run("ADD", conf())
    fake_ops.broken.add(f"{CID}:eth0")
    reply = run("CHECK", conf(prevResult=add.out))
    assert (reply.code, reply.error_code) == (1, 101)
    assert "interface missing" in reply.out["msg"]


def test_check_needs_prev_result_with_the_address(run) -> None:
    add = run("ADD", conf())
    missing = run("CHECK", conf())
    assert missing.error_code == 7
    assert missing.out["msg"] == "CHECK needs prevResult"
    wrong = dict(add.out, ips=[{"address": "10.9.0.99/24", "interface": 1}])
    reply = run("CHECK", conf(prevResult=wrong))
    assert reply.error_code == 7
    assert "10.9.0.1" in reply.out["msg"]


def test_check_of_an_unknown_endpoint(run) -> None:
    reply = run("CHECK", conf(prevResult={"cniVersion": "1.1.0", "ips": []}))
    assert reply.error_code == 101


# -- STATUS and GC ---------------------------------------------------------------------------------


def test_status_ready_and_not_ready(run, fake_ops: FakeEndpointOps) -> None:
    assert (run("STATUS", conf()).code, run("STATUS", conf()).out) == (0, None)
    fake_ops.ready = (False, "netmaster unreachable")
    reply = run("STATUS", conf(), container_id="", netns="", ifname="")
    assert reply.code == 1
    assert reply.out == {"cniVersion": "1.1.0", "code": 50, "msg": "contiv is not ready for ADD",
                         "details": "netmaster unreachable"}


@pytest.mark.parametrize("command", ["STATUS", "GC"])
@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "1.1.0"])
def test_status_and_gc_need_1_1_0(run, fake_ops: FakeEndpointOps, command: str, version: str) -> None:
    reply = run(command, conf(version))
    assert (reply.code, reply.out) == (1, {"cniVersion": version, "code": 1,
                                           "msg": f"config version {version} does not allow {command}",
                                           "details": ""})
    assert fake_ops.calls == []


def test_gc_releases_what_the_runtime_no_longer_lists(run, fake_ops: FakeEndpointOps) -> None:
    fake_ops.networks["default:other"] = "10.6.0.0/24"
    for cid in ("keep1", "gone1", "gone2"):
        assert run("ADD", conf(), container_id=cid).code == 0
    assert run("ADD", conf(network="other"), container_id="othernet").code == 0
    from tests.frontends.fake_ops import AddRequest
    fake_ops.add(AddRequest("a" * 64, "default", "net1"))  # a Docker endpoint: not CNI's to collect
    gc = conf(**{"cni.dev/valid-attachments": [{"containerID": "keep1", "ifname": "eth0"}]})
    reply = run("GC", gc, container_id="", netns="", ifname="")
    assert (reply.code, reply.out) == (0, None), reply
    assert sorted(fake_ops.endpoints) == ["a" * 64, "keep1:eth0", "othernet:eth0"]


def test_gc_reports_failures_after_trying_all(run, fake_ops: FakeEndpointOps) -> None:
    for cid in ("gone1", "gone2"):
        run("ADD", conf(), container_id=cid)
    fake_ops.fail_with = EndpointError("unavailable", "netmaster down")
    reply = run("GC", conf(**{"cni.dev/valid-attachments": []}))
    assert reply.error_code == 11
    assert reply.out["details"].count("netmaster down") == 2


# -- error paths: the spec's codes, and no side effects -------------------------------------------


BAD = [
    ("bad JSON", "ADD", "{not json", {}, 6, "cannot decode the network configuration"),
    ("not an object", "ADD", "[1, 2]", {}, 6, "the network configuration must be a JSON object"),
    ("no version", "ADD", json.dumps({"name": "net1", "type": "contiv"}), {}, 7,
     "cniVersion is missing from the network configuration"),
    ("future version", "ADD", json.dumps(conf("9.9.9")), {}, 1, "incompatible CNI version 9.9.9"),
    ("no command", "", json.dumps(conf()), {}, 4, "required environment variable CNI_COMMAND is missing"),
    ("unknown command", "FROB", json.dumps(conf()), {}, 4, "unknown CNI_COMMAND 'FROB'"),
    ("no container id", "ADD", json.dumps(conf()), {"container_id": ""}, 4,
     "required environment variables missing: CNI_CONTAINERID"),
    ("no netns and ifname", "ADD", json.dumps(conf()), {"netns": "", "ifname": ""}, 4,
     "required environment variables missing: CNI_IFNAME, CNI_NETNS"),
    ("bad container id", "ADD", json.dumps(conf()), {"container_id": "-x/y"}, 4,
     "CNI_CONTAINERID '-x/y' is invalid"),
    ("bad ifname", "ADD", json.dumps(conf()), {"ifname": "a/b"}, 4, "CNI_IFNAME 'a/b' is not a valid interface name"),
    ("bad CNI_ARGS", "ADD", json.dumps(conf()), {"cni_args": "IgnoreUnknown=1;junk"}, 4,
     "CNI_ARGS: invalid pair 'junk'"),
    ("bad name", "ADD", json.dumps(conf(name="-bad")), {}, 7, "network name is missing or invalid"),
    ("bad static ip", "ADD", json.dumps(conf(runtimeConfig={"ips": ["nope"]})), {}, 7,
     "requested IP 'nope' is not an address"),
    ("ipv6 static ip", "ADD", json.dumps(conf(runtimeConfig={"ips": ["fd00::5/64"]})), {}, 2,
     "requested IP fd00::5/64: only IPv4 is supported"),
    ("bad labels", "ADD", json.dumps(conf(args={"cni": {"labels": ["x"]}})), {}, 7,
     "args.cni.labels must be a list of {key, value} strings"),
    ("bad tenant", "ADD", json.dumps(conf(tenant="a b")), {}, 7, "tenant 'a b' is not a valid name"),
    ("bad annotations", "ADD", json.dumps(conf(runtimeConfig={"io.kubernetes.cri.pod-annotations": ["x"]})), {},
     7, "runtimeConfig io.kubernetes.cri.pod-annotations must be an object of strings"),
    ("bad annotated group", "ADD",
     json.dumps(conf(runtimeConfig={"io.kubernetes.cri.pod-annotations": {"io.contiv.net-group": "a b"}})), {},
     7, "group 'a b' is not a valid name"),
    ("unknown network", "ADD", json.dumps(conf(network="nope")), {}, 7,
     f"ADD {CID}:eth0: network default:nope not found"),
    ("netns gone", "ADD", json.dumps(conf()), {"netns": "/run/netns/fe-no-such-ns"}, 8,
     "network namespace /run/netns/fe-no-such-ns does not exist"),
    ("bad valid-attachments", "GC", json.dumps(conf(**{"cni.dev/valid-attachments": [{"x": 1}]})), {}, 7,
     "cni.dev/valid-attachments must be a list of {containerID, ifname}"),
]


@pytest.mark.parametrize(("command", "stdin", "kw", "code", "msg"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_without_side_effects(run, fake_ops: FakeEndpointOps, command: str, stdin: str,
                                                    kw: dict, code: int, msg: str) -> None:
    reply = run(command, stdin, **kw)
    assert reply.code == 1, reply
    assert set(reply.out) == {"cniVersion", "code", "msg", "details"}
    assert (reply.out["code"], reply.out["msg"]) == (code, msg)
    if not msg.endswith("not found"):  # rejected before reaching the endpoint operations
        assert fake_ops.mutations() == []
    assert fake_ops.endpoints == {}


@pytest.mark.parametrize(("kind", "code"), [("conflict", 100), ("unavailable", 11), ("internal", 999),
                                            ("invalid", 7), ("not_found", 7)])
def test_endpoint_errors_map_to_cni_codes(run, fake_ops: FakeEndpointOps, kind: str, code: int) -> None:
    fake_ops.fail_with = EndpointError(kind, "boom")
    reply = run("ADD", conf())
    assert reply.out == {"cniVersion": "1.1.0", "code": code, "msg": f"ADD {CID}:eth0: boom", "details": kind}


def test_taken_static_address_is_a_conflict(run) -> None:
    assert run("ADD", conf(runtimeConfig={"ips": ["10.9.0.9"]}), container_id="c1").code == 0
    reply = run("ADD", conf(runtimeConfig={"ips": ["10.9.0.9"]}), container_id="c2")
    assert reply.error_code == 100


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
def test_agent_down_is_try_again_later(cni_bin: Path, tmp_path: Path, netns: str, command: str) -> None:
    sock = str(tmp_path / "down.sock")
    reply = invoke(cni_bin, command, conf(), container_id=CID, netns=netns, extra_env={"CONTIV_CNI_SOCKET": sock})
    assert reply.code == 1
    assert reply.out == {"cniVersion": "1.1.0", "code": 11, "msg": "contiv agent not available, try again later",
                         "details": reply.out["details"]}
    assert sock in reply.out["details"]
    assert sock in reply.err


def test_socket_path_from_network_config(cni_bin: Path, cni_socket: str, netns: str) -> None:
    reply = invoke(cni_bin, "ADD", conf(agentSocket=cni_socket), container_id=CID, netns=netns,
                   extra_env={"CONTIV_CNI_SOCKET": "/nonexistent.sock"})
    assert reply.code == 0, reply


def test_malformed_message_on_the_socket(cni_socket: str) -> None:
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(cni_socket)
        s.sendall(b"garbage")
        s.shutdown(socket.SHUT_WR)
        reply = json.loads(s.makefile().read())
    assert reply["code"] == 1
    assert json.loads(reply["stdout"])["code"] == 6


def test_binary_imports_only_the_standard_library(cni_bin: Path) -> None:
    text = cni_bin.read_text()
    assert text.startswith("#!")
    assert text.splitlines()[0].endswith(" -IS")
    imports = {line.split()[1] for line in text.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"_json", "_socket", "errno", "posix", "sys", "time"}  # built in, or one small extension
    assert os.access(cni_bin, os.X_OK)


def test_binary_loads_no_module_beyond_its_imports(cni_bin: Path) -> None:
    """What the interpreter really loads to answer (``-X importtime`` lists every import), beyond
    what it loads to run nothing at all: no ``os``, ``json``, ``socket`` or anything they pull in
    sneaks in through a dependency."""
    import subprocess

    python = cni_bin.read_text().splitlines()[0][2:].split()[0]

    def loaded(*args: str) -> set[str]:
        proc = subprocess.run([python, "-X", "importtime", "-I", "-S", *args], input='{"cniVersion": "1.0.0"}',
                              env={"CNI_COMMAND": "VERSION"}, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return {line.split("|")[2].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}

    startup = loaded("-c", "pass")
    assert "encodings" in startup  # the listing works
    assert loaded(str(cni_bin)) - startup <= {"_json", "_socket", "errno"}


def test_install_prefers_a_recent_system_python(tmp_path: Path) -> None:
    from agent.cni import install as inst

    binary = inst.install(tmp_path / "bin")[0]
    shebang = binary.read_text().splitlines()[0]
    expected = inst.SYSTEM_PYTHON if inst.runs_plugin(inst.SYSTEM_PYTHON) else sys.executable
    assert shebang == f"#!{expected} -IS"


def test_install_refuses_an_interpreter_that_cannot_run_the_plugin(tmp_path: Path) -> None:
    import subprocess

    old = tmp_path / "python2"
    old.write_text("#!/bin/sh\nexit 1\n")  # what a too-old interpreter answers to the version check
    old.chmod(0o755)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "agent", "install-cni", "--bin-dir", str(tmp_path / "bin"),
                           "--python", str(old)], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "cannot run the contiv plugin" in proc.stderr
    assert not (tmp_path / "bin").exists()


def test_install_cni_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "agent", "install-cni", "--bin-dir", str(tmp_path / "bin"),
                          "--conf-dir", str(tmp_path / "net.d"), "--name", "blue-web", "--tenant", "blue",
                          "--group", "web", "--socket", "/run/x.sock"], cwd=repo, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == [str(tmp_path / "bin" / "contiv"), str(tmp_path / "net.d" / "10-contiv.conflist")]
    conf = json.loads((tmp_path / "net.d" / "10-contiv.conflist").read_text())
    assert conf == {"cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.1.0"], "name": "blue-web",
                    "plugins": [{"type": "contiv", "tenant": "blue", "network": "blue-web", "group": "web",
                                 "agentSocket": "/run/x.sock",
                                 "capabilities": {"io.kubernetes.cri.pod-annotations": True}}]}
    # a runtime's minimal environment: no PYTHONPATH, no virtualenv
    reply = invoke(tmp_path / "bin" / "contiv", "VERSION", {"cniVersion": "1.1.0"})
    assert reply.out == {"cniVersion": "1.1.0", "supportedVersions": list(VERSIONS)}
