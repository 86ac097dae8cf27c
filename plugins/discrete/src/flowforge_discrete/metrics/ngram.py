"""n-gram Jensen-Shannon divergence between generated and held-out text (bits, in [0, 1])."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.errors import InvalidArgumentError
from flowforge.metrics.base import Metric
from flowforge_discrete.metrics.context import SequenceContext


def ngrams(texts: list[str], n: int) -> Counter:
    """Counts of the character n-grams inside each text (none across texts)."""
    out: Counter = Counter()
    for text in texts:
        out.update(text[i : i + n] for i in range(len(text) - n + 1))
    return out


def js_divergence(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence of two count tables, in bits (0 equal, 1 disjoint)."""
    sp, sq = sum(p.values()), sum(q.values())
    if not sp or not sq:
        return 1.0
    total = 0.0
    for key in p.keys() | q.keys():
        a, b = p.get(key, 0) / sp, q.get(key, 0) / sq
        m = (a + b) / 2
        total += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return total / 2


@dataclass(frozen=True)
class NGramJS(Metric):
    """`ngram_js_<n>` for n = 1..`max_n`: JS divergence between the n-gram distributions of `k`
    decoded samples and of the second half of the test split; `ngram_js_<n>_baseline`: the same
    for the first `k` sequences of the test split's first half (held-out text, disjoint from the
    reference). `k` (`ngram_js_sequences`) = min(samples, half the test split), so both sides
    compare equally many sequences of one length with one reference: the baseline is what an
    exact sampler of the data scores, and finite-sample bias is the same on both sides."""

    max_n: Annotated[int, Field(ge=1, le=8, description="longest n-gram")] = 4

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        half = ctx.test.shape[0] // 2
        if half < 1 or ctx.samples.shape[0] < 1:
            raise InvalidArgumentError(
                f"ngram_js needs at least 2 test sequences and 1 sample, got "
                f"{ctx.test.shape[0]} and {ctx.samples.shape[0]}: hold out more data "
                "(data.params.test_fraction) or draw samples (sample.num_samples)"
            )
        k = min(ctx.samples.shape[0], half)
        samples = ctx.dataset.decode(ctx.samples[:k])
        baseline = ctx.dataset.decode(ctx.test[:k])
        reference = ctx.dataset.decode(ctx.test[half:])
        out = {"ngram_js_sequences": float(k)}
        for n in range(1, self.max_n + 1):
            ref = ngrams(reference, n)
            out[f"ngram_js_{n}"] = js_divergence(ngrams(samples, n), ref)
            out[f"ngram_js_{n}_baseline"] = js_divergence(ngrams(baseline, n), ref)
        return out
