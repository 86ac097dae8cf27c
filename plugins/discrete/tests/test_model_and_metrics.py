"""The transformer (bidirectional, causal, time-independent) and the sequence metrics."""

from __future__ import annotations

import math
import sys
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from flowforge_discrete import autoregressive
from flowforge_discrete.metrics import js_divergence, ngrams
from flowforge_discrete.models import TransformerParams, build_transformer

from flowforge import registry
from flowforge.errors import InvalidArgumentError


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_bidirectional_time_conditioned(positions):
    torch.manual_seed(0)
    m = build_transformer(
        TransformerParams(dim=32, depth=2, heads=2, positions=positions),
        data_shape=(12,),
        vocab_size=7,
    ).eval()
    x = torch.randint(0, 8, (3, 12))
    t = torch.tensor([0.1, 0.5, 0.9])
    out = m(x, t)
    assert out.shape == (3, 12, 7) and m.time_conditioned
    alone = torch.cat([m(x[i : i + 1], t[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(out, alone, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(m(x, t), m(x, t.flip(0))), "the output depends on t"
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 8
    assert not torch.allclose(m(x, t)[:, 0], m(y, t)[:, 0]), "bidirectional: the end is seen"


def test_causal_and_time_independent():
    torch.manual_seed(0)
    m = build_transformer(
        TransformerParams(dim=32, depth=2, heads=2, time_input=False),
        data_shape=(10,),
        vocab_size=5,
        causal=True,
    ).eval()
    assert m.time_conditioned is False
    x = torch.randint(0, 6, (2, 10))
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1) % 6
    torch.testing.assert_close(m(x)[:, :6], m(y)[:, :6])
    torch.testing.assert_close(m(x, torch.zeros(2)), m(x, torch.ones(2)))


def test_factory_needs_a_token_dataset():
    with pytest.raises(InvalidArgumentError, match="vocab_size"):
        registry.get("model", "transformer").build({}, data_shape=(2,))


def test_autoregressive_nll_is_normalised():
    """Summing exp(-NLL) over every sequence of a tiny vocabulary gives 1."""
    torch.manual_seed(0)
    m = build_transformer(
        TransformerParams(dim=16, depth=1, heads=2), data_shape=(3,), vocab_size=3, causal=True
    ).eval()
    every = torch.cartesian_prod(*[torch.arange(3)] * 3)
    total = torch.exp(-autoregressive.nll(m, every, bos=3)).sum()
    assert abs(float(total) - 1.0) < 1e-5


def test_js_divergence_bounds():
    a = ngrams(["abcabc"], 2)
    assert js_divergence(a, a) == 0.0
    assert math.isclose(js_divergence(Counter(ab=1), Counter(cd=1)), 1.0)
    mid = js_divergence(ngrams(["aaab"], 1), ngrams(["abbb"], 1))
    assert 0 < mid < 1


def test_smiles_quality():
    pytest.importorskip("rdkit")
    from flowforge_discrete.metrics import SmilesQuality

    class Data:
        def decode(self, rows):
            return rows

    ctx = SimpleNamespace(
        dataset=Data(), samples=["CCO", "OCC", "C1CC", "CC(=O)O", "xx"], train=["CCO"]
    )
    out = SmilesQuality().compute(ctx)
    assert out["smiles_validity"] == pytest.approx(3 / 5)
    assert out["smiles_uniqueness"] == pytest.approx(2 / 3)
    assert out["smiles_novelty"] == pytest.approx(1 / 2)


class _Chars:
    """Decodes rows of ids 0..25 as lowercase letters."""

    def decode(self, rows):
        return ["".join(chr(97 + int(i)) for i in row) for row in rows]


def _js(samples, test):
    from flowforge_discrete.metrics import NGramJS

    return NGramJS(max_n=3).compute(SimpleNamespace(dataset=_Chars(), samples=samples, test=test))


def test_ngram_js_reference_is_like_for_like():
    """Samples that are the baseline's own held-out rows score exactly the baseline: both sides
    compare equally many sequences of one length against one reference."""
    gen = torch.Generator().manual_seed(0)
    test = torch.randint(0, 6, (40, 24), generator=gen)
    out = _js(test[:20].clone(), test)
    assert out["ngram_js_sequences"] == 20
    for n in (1, 2, 3):
        assert out[f"ngram_js_{n}"] == out[f"ngram_js_{n}_baseline"] > 0
    # more samples than half the test split: only as many are compared as the baseline has
    more = torch.cat([test[:20], torch.randint(6, 12, (30, 24), generator=gen)])
    assert _js(more, test)["ngram_js_1"] == out["ngram_js_1"]
    # fewer samples: the baseline shrinks to match (a smaller set is further from the reference)
    few = _js(test[:5].clone(), test)
    assert few["ngram_js_sequences"] == 5 and few["ngram_js_3"] == few["ngram_js_3_baseline"]
    assert few["ngram_js_3_baseline"] > out["ngram_js_3_baseline"]


def test_ngram_js_needs_two_test_sequences():
    with pytest.raises(InvalidArgumentError, match="at least 2 test sequences"):
        _js(torch.zeros(3, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))


def test_missing_molecule_packages_name_the_extra(monkeypatch):
    """Without RDKit, fcd_torch or qm9pack, the SMILES pieces say which package and extra."""
    from flowforge_discrete.data import smiles as smiles_data
    from flowforge_discrete.metrics import FCD, canonical

    from flowforge.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "rdkit", None)
    monkeypatch.setitem(sys.modules, "fcd_torch", None)
    monkeypatch.setattr(smiles_data.importlib.util, "find_spec", lambda name: None)
    for call, package in [
        (lambda: canonical(["CCO"]), "rdkit"),
        (lambda: FCD().compute(SimpleNamespace()), "fcd_torch"),
        (lambda: smiles_data.qm9_smiles(11), "qm9pack"),
    ]:
        with pytest.raises(
            MissingDependencyError, match=rf"'{package}'.*flowforge-discrete\[molecules\]"
        ):
            call()
