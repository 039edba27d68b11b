"""Indexes a check family derives from the inventory once per run, so cross-resource checks never rescan it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, TypeVar
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from tbyte_policy.inventory import Inventory

T = TypeVar("T")


def per_inventory(build: Callable[[Inventory], T]) -> Callable[[Inventory], T]:
    """Build the index on first use for an inventory and hand out the same one for the rest of that run."""
    cache: WeakKeyDictionary = WeakKeyDictionary()

    @wraps(build)
    def index(inventory: Inventory) -> T:
        if inventory not in cache:
            cache[inventory] = build(inventory)
        return cache[inventory]

    return index
