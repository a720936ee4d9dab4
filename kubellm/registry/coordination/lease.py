"""Lease: held by one candidate at a time; updated by its holder with optimistic concurrency."""

from __future__ import annotations

from kubellm.registry.strategy import Strategy


class LeaseStrategy(Strategy):
    printer_columns = (("Holder", "string", ".spec.holderIdentity"),)
