"""Token datasets: text (pydoc topics or files), QM9 SMILES, FASTA."""

from flowforge_discrete.data.base import TokenDataset, Vocabulary
from flowforge_discrete.data.fasta import Fasta, FastaParams, read_fasta
from flowforge_discrete.data.smiles import QM9Smiles, QM9SmilesParams, qm9_smiles
from flowforge_discrete.data.text import Text, TextParams

__all__ = [
    "Fasta",
    "FastaParams",
    "QM9Smiles",
    "QM9SmilesParams",
    "Text",
    "TextParams",
    "TokenDataset",
    "Vocabulary",
    "qm9_smiles",
    "read_fasta",
]
