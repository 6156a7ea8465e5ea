"""A simulated Cisco ACI leaf, programmed from apic_mock's tree (see docs/apic_mock.md, "Simulated leaf").

Modules by job: :mod:`.model` (APIC tree -> leaf policy), :mod:`.flows` (policy -> OpenFlow rules),
:mod:`.switch` (namespace + userspace OVS), :mod:`.ovs` (one private OVS instance), :mod:`.learning`
(endpoint learning and ageing), :mod:`.apic` (reads the APIC, reports fvCEp), :mod:`.controller` (the
loop), :mod:`.cli` (``apic-mock leaf``), :mod:`.sim` (:class:`SimLeaf` for tests and the demo).
"""

from apic_mock.leaf.sim import SimLeaf

__all__ = ["SimLeaf"]
