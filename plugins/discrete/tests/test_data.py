"""Token datasets: held-out splits, vocabularies that round-trip, FASTA parsing, QM9 SMILES."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from flowforge_discrete.data import Fasta, FastaParams, Text, TextParams, read_fasta
from flowforge_discrete.data.base import held_out

from flowforge.errors import InvalidArgumentError


def test_pydoc_topics_hold_out_ten_percent_of_documents():
    data = Text(TextParams(seq_len=64))
    texts = data.split_texts()
    sizes = {k: len(v) for k, v in texts.items()}
    assert 0.08 < sizes["test"] / sum(sizes.values()) < 0.12
    assert texts["test"][:2000] not in texts["train"], "held-out documents are not in training"
    splits = data.splits()
    assert splits["train"].shape[1] == 64 and splits["train"].dtype == torch.long
    assert data.decode(splits["test"][:1])[0] == texts["test"][:64]


def test_byte_level_round_trips_unicode(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("naïve café – λx. x\n\n" * 40, encoding="utf-8")
    data = Text(TextParams(source="files", files=[str(f)], level="byte", seq_len=16))
    assert data.vocab_size == 256
    ids = data.vocabulary.encode("café λ")
    assert data.vocabulary.decode(ids) == "café λ"


def test_files_source_needs_files():
    with pytest.raises(InvalidArgumentError, match="files"):
        Text(TextParams(source="files"))


def test_held_out_fraction_by_size():
    picks = held_out([10] * 100, 0.1)
    assert sum(picks) == 10 and picks.index(True) < 11


def test_fasta_records_pad_and_alphabet(tmp_path):
    f = tmp_path / "x.fasta"
    f.write_text(">r1 first\nACGT\nAC\n;comment\n>r2\nggcca\n>r3\nTTTTTTTTTT\n")
    assert read_fasta(f) == [("r1 first", "ACGTAC"), ("r2", "GGCCA"), ("r3", "TTTTTTTTTT")]
    data = Fasta(FastaParams(files=[str(f)], alphabet="dna", seq_len=8))
    rows = torch.cat([data.splits()["train"], data.splits()["test"]])
    assert data.pad_id == 5 and rows.shape[1] == 8
    assert set(data.decode(rows)) <= {"ACGTAC", "GGCCA", "TTTTTTTT"}
    protein = tmp_path / "p.fa"
    protein.write_text(">p\nMKWVTQ\n")
    with pytest.raises(InvalidArgumentError, match="alphabet"):
        Fasta(FastaParams(files=[str(protein)], alphabet="dna"))


def test_fasta_rejects_headerless_files(tmp_path):
    f = tmp_path / "bad.fa"
    f.write_text("ACGT\n")
    with pytest.raises(InvalidArgumentError, match="header"):
        read_fasta(f)


@pytest.mark.skipif(
    importlib.util.find_spec("qm9pack") is None or importlib.util.find_spec("rdkit") is None,
    reason="QM9 SMILES need flowforge-discrete[molecules]",
)
def test_qm9_smiles_subset():
    from flowforge_discrete.data import QM9Smiles, QM9SmilesParams
    from flowforge_discrete.metrics import canonical

    data = QM9Smiles(QM9SmilesParams(max_molecules=300, seq_len=24))
    splits = data.splits()
    assert splits["test"].shape[0] == 30 and splits["train"].shape[1] == 24
    decoded = data.decode(splits["train"][:50])
    assert all(s is not None for s in canonical(decoded)), "QM9 SMILES parse with RDKit"
