"""QM9 SMILES from the PyPI package `qm9pack` (the molecules plugin's source too), char-level.

`qm9pack` ships QM9's 130,831 molecules as CSV files; only the SMILES column is read (with the
standard library, streaming, stopping after `max_molecules`). Each SMILES is followed by padding
to `seq_len`; the pad token is generated like any other, so a sample carries its own length.
Every tenth molecule (by QM9 index) is held out as test, every twentieth of the rest as val.
"""

from __future__ import annotations

import csv
import importlib.util
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError, MissingDependencyError
from flowforge_discrete.data.base import TokenDataset, Vocabulary, pad_rows, split_held_out

PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")


class QM9SmilesParams(BaseModel):
    """How many QM9 molecules, and the sequence length."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_molecules: Annotated[
        int | None,
        Field(
            ge=10,
            description="read only the first this many molecules (QM9 order: small ones first)",
        ),
    ] = None
    seq_len: Annotated[
        int, Field(ge=8, description="tokens per SMILES (longer ones are dropped)")
    ] = 32


@cache
def qm9_smiles(limit: int | None) -> tuple[str, ...]:
    """SMILES of QM9 in index order (the first `limit`, or all)."""
    spec = importlib.util.find_spec("qm9pack")  # locates the data without importing pandas
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "qm9pack", "the qm9_smiles dataset", "pip install 'flowforge-discrete[molecules]'"
        )
    root = Path(spec.submodule_search_locations[0]) / "data"
    out: list[str] = []
    csv.field_size_limit(1 << 24)
    for part in PARTS:
        with (root / part).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out.append(row["SMILES"])
                if limit is not None and len(out) >= limit:
                    return tuple(out)
    return tuple(out)


class QM9Smiles(TokenDataset):
    """QM9 SMILES as padded character sequences (see the module docstring)."""

    def __init__(self, params: QM9SmilesParams):
        self.params = params
        smiles = [s for s in qm9_smiles(params.max_molecules) if len(s) < params.seq_len]
        if not smiles:
            raise InvalidArgumentError("data.params.seq_len is shorter than every QM9 SMILES")
        self.smiles = smiles
        self._vocab = Vocabulary(sorted(set("".join(smiles))), pad=True)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def split_smiles(self) -> dict[str, list[str]]:
        return split_held_out(self.smiles, 0.1, 0.05, size=lambda _: 1)

    def sequences(self) -> dict[str, Tensor]:
        encode, pad = self._vocab.encode, self._vocab.pad_id
        return {
            k: pad_rows([encode(s) for s in v], self.params.seq_len, pad)
            for k, v in self.split_smiles().items()
        }
