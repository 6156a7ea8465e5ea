"""``GET /api/v1/inspect/Bgps/<host>/``: the Bgp object with its host's BGP state, live.

Contiv's netmaster answered this inspect by fetching ``/inspect/bgp`` from the host's netplugin; so
does this one, through the inspect API the agent publishes (``--inspect-listen``, the same path as
``netctl agent inspect``). ``Oper`` carries Contiv's fields (``neighborStatus``, ``adminStatus``,
``numRoutes``, ``routes``) and, per neighbour, its state, uptime and prefixes received, accepted and
advertised. A host whose agent is absent, publishes no inspect API or does not answer still gets its
``Config``, with the reason in ``Oper.error`` instead of a failed request (the object exists either
way), and the neighbours' session states from its agent record if the agent sent them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from netmaster.api.agent_inspect import agent_get
from netmaster.api.agents import AgentRegistry
from netmaster.errors import ApiError
from netmaster.objects.service import ObjectService


def bgp_oper(agent: dict[str, Any]) -> dict[str, Any]:
    """Contiv's Bgp Oper fields from the agent's ``/inspect/bgp``."""
    neighbors = [{"address": n["address"], "as": n.get("asn"), "state": n["state"], "admin": n.get("admin", ""),
                  "uptime": n.get("uptime", 0), "flops": n.get("flops", 0),
                  "prefixes": {k: n.get(k, 0) for k in ("received", "accepted", "advertised")}}
                 for n in agent.get("neighbors", [])]
    states = {n["state"] for n in neighbors}
    if len(states) == 1:
        status = states.pop().capitalize()
    else:
        status = ",".join(f"{n['address']}={n['state'].capitalize()}" for n in neighbors)
    routes = [{"prefix": r["prefix"], "nextHop": r["next_hop"], "peer": r["peer"], "asPath": r["as_path"]}
              for r in agent.get("routes", [])]
    return {"neighborStatus": status, "adminStatus": "Up" if agent.get("state") == "running" else "Down",
            "numRoutes": len(routes), "routes": routes, "neighbors": neighbors,
            "announced": agent.get("announced", []), "error": agent.get("error", "")}


async def _from_record(registry: AgentRegistry, host: str) -> dict[str, Any]:
    """What the agent record says (neighbour states, from the last heartbeat) when the agent cannot be
    asked: better than nothing, and says where it comes from."""
    try:
        states = (await registry.get(host)).get("bgp") or {}
    except ApiError:
        return {}
    if not states:
        return {}
    oper = bgp_oper({"neighbors": [{"address": a, "state": s} for a, s in states.items()]})
    return {"neighborStatus": oper["neighborStatus"], "neighbors": oper["neighbors"], "source": "agent record"}


def add_bgp_inspect_route(app: FastAPI, objects: ObjectService, registry: AgentRegistry, token: str | None) -> None:
    """Register before the generic object routes, so this one answers the Bgp inspect."""

    async def inspect_bgp(key: str) -> JSONResponse:
        found = await objects.inspect("Bgp", key)
        try:
            status, agent = await agent_get(registry, key, "/inspect/bgp", {}, token)
            oper = bgp_oper(agent) if status == 200 else {**found["Oper"], "error": f"agent answered {status}"}
        except ApiError as exc:
            oper = {**found["Oper"], **await _from_record(registry, key), "error": str(exc)}
        return JSONResponse({"Config": found["Config"], "Oper": oper})

    for suffix in ("", "/"):
        app.add_api_route("/api/v1/inspect/Bgps/{key}" + suffix, inspect_bgp, methods=["GET"], tags=["Bgp"],
                          include_in_schema=suffix == "/", name="inspect Bgp" + suffix)
