"""FASTA files of DNA or protein sequences, one record per row, padded to `seq_len`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge_discrete.data.base import (
    TokenDataset,
    Vocabulary,
    held_out,
    pad_rows,
    partition,
)

ALPHABETS = {"dna": "ACGTN", "protein": "ACDEFGHIKLMNPQRSTVWYX"}


class FastaParams(BaseModel):
    """FASTA sources, alphabet and length."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: Annotated[list[str], Field(min_length=1, description="FASTA files (.fa, .fasta)")]
    alphabet: Literal["dna", "protein", "auto"] = Field(
        "auto", description="dna (ACGTN), protein (20 amino acids + X) or auto (from the data)"
    )
    seq_len: Annotated[int, Field(ge=2, description="tokens per record (longer ones are cut)")] = (
        128
    )
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1


def read_fasta(path: str | Path) -> list[tuple[str, str]]:
    """(header, sequence) records of a FASTA file; sequences upper-cased, line breaks joined."""
    records: list[tuple[str, list[str]]] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidArgumentError(f"data.params.files: cannot read {path}: {err}") from None
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            records.append((line[1:].strip(), []))
        elif not records:
            raise InvalidArgumentError(
                f"{path}:{n}: sequence data before the first '>' header; is this a FASTA file?"
            )
        else:
            records[-1][1].append(line.upper())
    return [(h, "".join(parts)) for h, parts in records]


class Fasta(TokenDataset):
    """Records of FASTA files as padded token rows; test: a tenth of the records, by size."""

    def __init__(self, params: FastaParams):
        self.params = params
        self.records = [s for f in params.files for _, s in read_fasta(f) if s]
        if not self.records:
            raise InvalidArgumentError("data.params.files: the FASTA files hold no sequences")
        letters = sorted(set("".join(self.records)))
        if params.alphabet != "auto":
            alphabet = ALPHABETS[params.alphabet]
            bad = sorted(set(letters) - set(alphabet))
            if bad:
                raise InvalidArgumentError(
                    f"data.params.alphabet {params.alphabet}: the files contain {bad}; "
                    "use alphabet: auto"
                )
            letters = list(alphabet)
        self._vocab = Vocabulary(letters, pad=True)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def sequences(self) -> dict[str, Tensor]:
        test = held_out([len(r) for r in self.records], self.params.test_fraction)
        train, held = partition(self.records, test)
        held = held or train[-1:]
        rows = {"train": train, "val": held, "test": held}
        encode, pad = self._vocab.encode, self._vocab.pad_id
        return {
            k: pad_rows([encode(r) for r in v], self.params.seq_len, pad) for k, v in rows.items()
        }
