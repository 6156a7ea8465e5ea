"""Contiv's objects (tenants, networks, groups, policies, ...) and endpoints: validation, allocation, storage."""
