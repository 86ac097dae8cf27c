"""n-gram Jensen-Shannon divergence between generated and held-out text (bits, in [0, 1])."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

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
    """`ngram_js_<n>` for n = 1..`max_n`: JS divergence of the n-gram distributions of the
    decoded samples and of the decoded test split; `ngram_js_<n>_baseline`: the same between
    two halves of the test split, the value an ideal sampler of that size reaches about."""

    max_n: Annotated[int, Field(ge=1, le=8, description="longest n-gram")] = 4

    def compute(self, ctx: SequenceContext) -> dict[str, float]:
        samples, test = ctx.dataset.decode(ctx.samples), ctx.dataset.decode(ctx.test)
        half = len(test) // 2
        out = {}
        for n in range(1, self.max_n + 1):
            out[f"ngram_js_{n}"] = js_divergence(ngrams(samples, n), ngrams(test, n))
            out[f"ngram_js_{n}_baseline"] = js_divergence(
                ngrams(test[:half], n), ngrams(test[half:], n)
            )
        return out
