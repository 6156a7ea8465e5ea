"""Allocators: integer id pools (VLAN, VNI, local VLAN, EPG id) and per-network IPAM.

They are pure functions over small serialisable records; callers read and write those records
inside a store transaction (:mod:`netmaster.store.txn`), which is what makes allocation safe across
concurrent requests and several netmasters.
"""
