"""Token datasets: fixed splits of int64 sequences `(N, L)` with a vocabulary that decodes them."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from functools import cached_property

import torch
from torch import Tensor

from flowforge.data.base import Dataset
from flowforge.errors import InvalidArgumentError


class Vocabulary:
    """Symbols <-> ids; `pad` (if any) is the last id. Characters or bytes (`symbols` of ints)."""

    def __init__(self, symbols: list, pad: bool = False, byte_level: bool = False):
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.pad_id = len(self.symbols) if pad else None
        self.byte_level = byte_level

    @property
    def size(self) -> int:
        return len(self.symbols) + (self.pad_id is not None)

    def encode(self, text: str | bytes) -> list[int]:
        items = text.encode("utf-8") if self.byte_level and isinstance(text, str) else text
        try:
            return [self.index[s] for s in items]
        except KeyError as err:
            raise InvalidArgumentError(f"symbol {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else ids
        picked = [self.symbols[i] for i in ids if i != self.pad_id and i < len(self.symbols)]
        if self.byte_level:
            return bytes(picked).decode("utf-8", errors="replace")
        return "".join(picked)


class TokenDataset(Dataset):
    """Base of token datasets: `sequences()` gives the splits, `vocabulary` decodes them.

    `splits()` are int64 `(N, L)`; `pad_id` is the padding token (generated like any other for
    variable-length data, so samples carry their length) or None; `decode` turns rows into text.
    """

    @abc.abstractmethod
    def sequences(self) -> dict[str, Tensor]:
        """train / val / test int64 `(N, L)`."""

    @property
    @abc.abstractmethod
    def vocabulary(self) -> Vocabulary: ...

    @cached_property
    def _splits(self) -> dict[str, Tensor]:
        return self.sequences()

    def splits(self) -> dict[str, Tensor]:
        return self._splits

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    @property
    def pad_id(self) -> int | None:
        return self.vocabulary.pad_id

    def decode(self, tokens: Tensor) -> list[str]:
        return [self.vocabulary.decode(row) for row in tokens]


def chunk(ids: list[int], length: int) -> Tensor:
    """Non-overlapping windows of `length` tokens `(N, length)` (the tail is dropped)."""
    n = len(ids) // length
    return torch.tensor(ids[: n * length], dtype=torch.long).reshape(n, length)


def pad_rows(rows: list[list[int]], length: int, pad_id: int) -> Tensor:
    """Rows cut to `length` and padded with `pad_id` on the right, `(N, length)`."""
    out = torch.full((len(rows), length), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        r = r[:length]
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def held_out(sizes: list[int], fraction: float) -> list[bool]:
    """Which items to hold out, in order, so the held-out ones make up `fraction` of the total
    size at every prefix (deterministic, spread evenly, whole items only)."""
    if not 0 < fraction < 1:
        raise InvalidArgumentError(f"a held-out fraction must lie in (0, 1), got {fraction}")
    out, total, kept = [], 0, 0
    for size in sizes:
        total += size
        take = kept + size / 2 <= fraction * total
        kept += size if take else 0
        out.append(take)
    return out


def partition(items: Sequence, held: list[bool]) -> tuple[list, list]:
    """(kept, held) items in order, by `held_out`'s flags."""
    kept = [x for x, h in zip(items, held, strict=True) if not h]
    return kept, [x for x, h in zip(items, held, strict=True) if h]


def split_held_out(
    items: Sequence, test_fraction: float, val_fraction: float, size: Callable = len
) -> dict[str, list]:
    """train / val / test of `items` (whole items, in order): `test_fraction` of the total
    `size` held out as test, then `val_fraction` of the rest's as val."""
    rest, test = partition(items, held_out([size(x) for x in items], test_fraction))
    train, val = partition(rest, held_out([size(x) for x in rest], val_fraction))
    return {"train": train, "val": val, "test": test}
