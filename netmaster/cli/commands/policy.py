"""``netctl policy``: policies and their rules (``rule-add``, ``rule-rm``, ``rule-ls``)."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    get_client,
    json_option,
    quiet_option,
    tenant_option,
    usage_error,
)
from netmaster.cli.output import Column, Row, echo_json, echo_names, echo_table

POLICY = Resource(
    plural="policys",
    label="policy",
    name_field="policyName",
    columns=(Column("Tenant", "tenantName"), Column("Policy", "policyName")),
)

RULE = Resource(plural="rules", label="rule", name_field="ruleId", columns=())

INCOMING_COLUMNS = (
    Column("Rule", "ruleId"),
    Column("Priority", "priority"),
    Column("From EndpointGroup", "fromEndpointGroup"),
    Column("From Network", "fromNetwork"),
    Column("From IpAddress", "fromIpAddress"),
    Column("To IpAddress", "toIpAddress"),
    Column("Protocol", "protocol"),
    Column("Port", "port"),
    Column("Action", "action"),
)

OUTGOING_COLUMNS = (
    Column("Rule", "ruleId"),
    Column("Priority", "priority"),
    Column("To EndpointGroup", "toEndpointGroup"),
    Column("To Network", "toNetwork"),
    Column("To IpAddress", "toIpAddress"),
    Column("Protocol", "protocol"),
    Column("Port", "port"),
    Column("Action", "action"),
)


@click.group(cls=NetctlGroup, help="Policy manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, POLICY, "List policies.")
add_inspect_command(cli, POLICY, "POLICY", "Inspect a policy (endpoints it applies to).")
add_delete_command(cli, POLICY, "POLICY", "Delete a policy and its rules.")


@cli.command("create")
@click.argument("name", metavar="POLICY")
@tenant_option
def create(name: str, tenant: str) -> None:
    """Create a policy."""
    POLICY.create(tenant, name, {"tenantName": tenant, "policyName": name})


def check_rule_peers(
    direction: str,
    *,
    from_group: str | None,
    to_group: str | None,
    from_network: str | None,
    to_network: str | None,
    from_ip: str | None,
    to_ip: str | None,
) -> None:
    """Refuse direction/peer combinations netmaster would refuse, before any request (exit 1).

    The rules are Contiv's: an incoming rule names where traffic comes *from* (a group, a network or
    an address, but not a network together with a group or address) and an outgoing rule names where
    it goes *to*. ``--to-ip-address`` on an incoming rule stays allowed: netmaster accepts it for
    Kubernetes-style policies bound to one group.
    """
    if direction == "in":
        if to_group:
            raise usage_error("Can't specify to-group for incoming rule", show_help=False)
        if to_network:
            raise usage_error("Can't specify to-network for incoming rule", show_help=False)
        if from_network and (from_group or from_ip):
            raise usage_error("Can't specify from-network together with from-group or from-ip-address", show_help=False)
    elif direction == "out":
        if from_group:
            raise usage_error("Can't specify from-group for outgoing rule", show_help=False)
        if from_network:
            raise usage_error("Can't specify from-network for outgoing rule", show_help=False)
        if from_ip:
            raise usage_error("Can't specify from-ip-address for outgoing rule", show_help=False)
        if to_network and (to_group or to_ip):
            raise usage_error("Can't specify to-network together with to-group or to-ip-address", show_help=False)
    else:
        raise usage_error(f"Unknown direction {direction!r} (use in or out)", show_help=False)


@cli.command("rule-add")
@click.argument("policy", metavar="POLICY")
@click.argument("rule_id", metavar="RULE_ID")
@tenant_option
@click.option("-p", "--priority", type=int, default=1, show_default=True, help="Priority (1-100, higher wins).")
@click.option("-d", "--direction", default="in", show_default=True, help="Direction of traffic (in/out).")
@click.option("-g", "--from-group", help="From endpoint group (incoming rules only).")
@click.option("-e", "--to-group", help="To endpoint group (outgoing rules only).")
@click.option("-n", "--from-network", help="From network (incoming rules only).")
@click.option("-o", "--to-network", help="To network (outgoing rules only).")
@click.option("-i", "--from-ip-address", "from_ip", help="From IP address/CIDR (incoming rules only).")
@click.option("-s", "--to-ip-address", "to_ip", help="To IP address/CIDR (outgoing rules only).")
@click.option("-l", "--protocol", help="Protocol (tcp, udp, icmp or a number).")
@click.option("-P", "--port", type=int, default=0, help="Port (0: any).")
@click.option("-j", "--action", default="allow", show_default=True, help="Action (allow or deny).")
def rule_add(
    policy: str,
    rule_id: str,
    tenant: str,
    priority: int,
    direction: str,
    from_group: str | None,
    to_group: str | None,
    from_network: str | None,
    to_network: str | None,
    from_ip: str | None,
    to_ip: str | None,
    protocol: str | None,
    port: int,
    action: str,
) -> None:
    """Add rule RULE_ID to POLICY."""
    check_rule_peers(direction, from_group=from_group, to_group=to_group, from_network=from_network,
                     to_network=to_network, from_ip=from_ip, to_ip=to_ip)
    RULE.create(
        tenant,
        f"{policy}:{rule_id}",
        {
            "tenantName": tenant,
            "policyName": policy,
            "ruleId": rule_id,
            "priority": priority,
            "direction": direction,
            "fromEndpointGroup": from_group,
            "toEndpointGroup": to_group,
            "fromNetwork": from_network,
            "toNetwork": to_network,
            "fromIpAddress": from_ip,
            "toIpAddress": to_ip,
            "protocol": protocol,
            "port": port,
            "action": action,
        },
    )


@cli.command("rule-rm", aliases=["rule-delete"])
@click.argument("policy", metavar="POLICY")
@click.argument("rule_id", metavar="RULE_ID")
@tenant_option
def rule_rm(policy: str, rule_id: str, tenant: str) -> None:
    """Delete rule RULE_ID from POLICY."""
    RULE.delete(tenant, f"{policy}:{rule_id}")


def _rule_order(rule: Row) -> tuple[int, str]:
    priority = rule.get("priority")
    return (priority if isinstance(priority, int) else 0, str(rule.get("ruleId", "")))


@cli.command("rule-ls", aliases=["rule-list"])
@click.argument("policy", metavar="POLICY")
@tenant_option
@json_option
@quiet_option
def rule_ls(policy: str, tenant: str, as_json: bool, quiet: bool) -> None:
    """List the rules of POLICY by priority, incoming and outgoing apart."""
    client = get_client()
    # Contiv looks both up first, so a wrong name is an error instead of an empty list.
    client.get("tenants", tenant)
    client.get(POLICY.plural, POLICY.key(tenant, policy))
    rules = sorted(
        (r for r in client.list(RULE.plural) if r.get("tenantName") == tenant and r.get("policyName") == policy),
        key=_rule_order,
    )
    if as_json:
        echo_json(rules)
    elif quiet:
        echo_names(rules, "ruleId")
    else:
        click.echo("Incoming Rules:")
        echo_table(INCOMING_COLUMNS, [r for r in rules if r.get("direction") == "in"])
        click.echo("Outgoing Rules:")
        echo_table(OUTGOING_COLUMNS, [r for r in rules if r.get("direction") == "out"])
