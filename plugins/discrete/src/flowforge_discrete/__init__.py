"""flowforge-discrete: masked diffusion on text, SMILES and FASTA sequences.

Registers the token datasets `text`, `qm9_smiles`, `fasta`, the `transformer` model, the
metrics `nll_bits`, `ngram_js`, `smiles_quality`, `smiles_fcd`, `sampling_speed`, and the task
`discrete_generate`. The discrete paths, solvers and guidance live in core
(`flowforge.discrete`).
"""

from __future__ import annotations

import flowforge
from flowforge_discrete.data import (
    Fasta,
    FastaParams,
    QM9Smiles,
    QM9SmilesParams,
    Text,
    TextParams,
)
from flowforge_discrete.metrics import FCD, NGramJS, NLLBits, SamplingSpeed, SmilesQuality
from flowforge_discrete.models import TransformerParams, build_transformer
from flowforge_discrete.task import DiscreteGenerate


@flowforge.hookimpl
def register_datasets(register):
    register("text", Text, params=TextParams, summary="Char/byte text: pydoc topics or files")
    register("qm9_smiles", QM9Smiles, params=QM9SmilesParams, summary="QM9 SMILES (qm9pack)")
    register("fasta", Fasta, params=FastaParams, summary="DNA or protein records of FASTA files")


@flowforge.hookimpl
def register_models(register):
    register(
        "transformer",
        build_transformer,
        params=TransformerParams,
        summary="Sequence transformer: rotary/learned positions, optional time input",
    )


@flowforge.hookimpl
def register_metrics(register):
    register("nll_bits", NLLBits, summary="Test bits/token: diffusion bound or AR exact")
    register("ngram_js", NGramJS, summary="n-gram Jensen-Shannon divergence to held-out text")
    register("smiles_quality", SmilesQuality, summary="SMILES validity, uniqueness, novelty")
    register("smiles_fcd", FCD, summary="Frechet ChemNet Distance of SMILES samples to held-out")
    register("sampling_speed", SamplingSpeed, summary="Samples/s and calls with/without cache")


@flowforge.hookimpl
def register_tasks(register):
    register("discrete_generate", DiscreteGenerate, summary="Train, sample, evaluate sequences")
