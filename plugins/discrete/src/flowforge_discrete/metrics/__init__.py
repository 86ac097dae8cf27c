"""Metrics of sequence models: NLL bits/token, n-gram JS, SMILES quality, FCD, sampling speed."""

from flowforge_discrete.metrics.context import SequenceContext
from flowforge_discrete.metrics.ngram import NGramJS, js_divergence, ngrams
from flowforge_discrete.metrics.nll import NLLBits
from flowforge_discrete.metrics.smiles import FCD, SmilesQuality, canonical
from flowforge_discrete.metrics.speed import SamplingSpeed, timed_sample

__all__ = [
    "FCD",
    "NGramJS",
    "NLLBits",
    "SamplingSpeed",
    "SequenceContext",
    "SmilesQuality",
    "canonical",
    "js_divergence",
    "ngrams",
    "timed_sample",
]
