"""The ``contiv`` CNI plugin binary: a thin client of the agent.

A runtime starts this program once per container operation, so it must start fast: it imports only
the standard library (no pyroute2, no OVS, no third-party code) and does no work of its own. Even
``json`` and ``socket`` are too slow to import here (``re`` and ``enum`` come with them: ~25 ms, as
much as the reference plugin's whole ADD), so it uses the C modules behind them, ``_json`` (the
decoder's scanner and the string encoder) and ``_socket``, and writes the little JSON it sends.
``os`` (1.5 ms: ``posixpath``, ``stat``, ``_collections_abc``) gives way to the built-in ``posix``
for the environment, and there is no ``from __future__`` import: every module here is built in
except ``_json`` and ``_socket``, which are each one small extension. It
packs the CNI request (the ``CNI_*`` environment and stdin) into one JSON message, sends it to the
agent's unix socket, and prints the agent's reply with the agent's exit code. The agent does
everything else, so there is exactly one place that knows how an endpoint is made.

Wire format (one request per connection): the client writes a JSON object
``{"env": {...}, "stdin": "..."}`` and shuts down its write side; the agent answers with
``{"code": N, "stdout": "...", "stderr": "..."}`` and closes.

The socket path is ``agentSocket`` in the network configuration, else ``CONTIV_CNI_SOCKET``, else
:data:`DEFAULT_SOCKET`. When the agent cannot be reached the plugin answers itself, with CNI error
code 11 ("try again later"), except for VERSION, which needs no agent.
"""

import _json
import _socket
import errno
import posix
import sys
import time

DEFAULT_SOCKET = "/run/contiv/contiv-cni.sock"
SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
ERR_TRY_AGAIN_LATER = 11
ERR_DECODE = 6
TIMEOUT_SECONDS = 120.0  # an ADD may wait for OVS; runtimes have their own, longer, deadlines
_MAX_REPLY = 16 << 20
_WHITESPACE = " \t\n\r"


class _ScanContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder`` (the defaults of ``json.loads``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity
    memo: dict[str, str] = {}


def loads(text: str | bytes) -> object:
    """``json.loads`` for one document; ValueError if it is not JSON. Bad input takes the slow way
    through ``json`` itself (the C scanner's errors need ``json.decoder`` anyway)."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _json.make_scanner(_ScanContext())(text, start)
        if not text[end:].strip(_WHITESPACE):
            return value
    except Exception:  # json.loads below raises the proper error
        pass
    import json  # only for malformed input

    return json.loads(text)


def dumps(value: object) -> str:
    """``json.dumps`` for what the plugin writes (strings, numbers, lists, objects), same output."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def socket_path(stdin: str, environ: dict[str, str]) -> str:
    try:
        conf = loads(stdin) if stdin.strip() else {}
    except ValueError:
        conf = {}
    path = conf.get("agentSocket") if isinstance(conf, dict) else None
    return path if isinstance(path, str) and path else environ.get("CONTIV_CNI_SOCKET", DEFAULT_SOCKET)


def version_reply(stdin: str) -> str:
    """VERSION is answered locally: it must work while the agent is down (runtimes probe with it)."""
    try:
        conf = loads(stdin) if stdin.strip() else {}
        version = conf.get("cniVersion", "0.1.0") if isinstance(conf, dict) else "0.1.0"
    except ValueError:
        version = "0.1.0"
    if not isinstance(version, str) or not version:
        version = "0.1.0"
    return dumps({"cniVersion": version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1],
                       "supportedVersions": list(SUPPORTED_VERSIONS)})


def error_reply(code: int, msg: str, details: str, stdin: str) -> str:
    try:
        conf = loads(stdin)
        version = conf.get("cniVersion") if isinstance(conf, dict) else None
    except ValueError:
        version = None
    return dumps({"cniVersion": version if isinstance(version, str) and version else "1.1.0",
                       "code": code, "msg": msg, "details": details})


def call_agent(path: str, env: dict[str, str], stdin: str, timeout: float = TIMEOUT_SECONDS) -> dict:
    """Send one request to the agent and return its decoded reply (raises OSError/ValueError)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        for delay in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 0):
            try:
                sock.connect(path)
                break
            except BlockingIOError as exc:  # the agent's backlog is full: it is busy, not down
                if not delay or exc.errno != errno.EAGAIN:
                    raise
                time.sleep(delay)
        sock.sendall(dumps({"env": env, "stdin": stdin}).encode())
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        size = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > _MAX_REPLY:
                raise ValueError("reply too large")
            chunks.append(chunk)
    finally:
        sock.close()
    reply = loads(b"".join(chunks))
    if not isinstance(reply, dict) or not isinstance(reply.get("code"), int):
        raise ValueError("malformed reply from the agent")
    return reply


def run(environ: dict[str, str], stdin: str) -> tuple[int, str, str]:
    """One plugin invocation: (exit code, stdout, stderr)."""
    env = {k: v for k, v in environ.items() if k.startswith("CNI_")}
    if env.get("CNI_COMMAND") == "VERSION":
        return 0, version_reply(stdin), ""
    path = socket_path(stdin, environ)
    try:
        reply = call_agent(path, env, stdin)
    except (OSError, ValueError) as exc:
        reason = f"cannot reach the contiv agent at {path}: {exc}"
        return 1, error_reply(ERR_TRY_AGAIN_LATER, "contiv agent not available, try again later", reason,
                              stdin), reason + "\n"
    return reply["code"], str(reply.get("stdout", "")), str(reply.get("stderr", ""))


def environment() -> dict[str, str]:
    """``os.environ`` without ``os``: the process environment, decoded as ``os`` decodes it."""
    return {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
            for k, v in posix.environ.items()}


def main() -> int:
    try:
        stdin = sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(error_reply(ERR_DECODE, "cannot read the network configuration", str(exc), ""))
        return 1
    code, out, err = run(environment(), stdin)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if err:
        sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
