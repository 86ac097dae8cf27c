"""`require`: the check of flowforge's testing kit, which, unlike `assert`, survives `python -O`."""

from __future__ import annotations

from flowforge.errors import ContractError


def require(condition: object, message: str) -> None:
    """Raise `ContractError(message)` unless `condition` is true."""
    if not condition:
        raise ContractError(message)
