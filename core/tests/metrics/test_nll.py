"""The `nll` metric: data units, standardisation and the exact density of a known dataset."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.data import Standardizer
from flowforge.metrics import MetricContext
from flowforge.targets import GaussianMixture


def _standardized_mixture(data, st: Standardizer) -> GaussianMixture:
    """The dataset's mixture seen in standardised coordinates (an exact model there)."""
    gm = data.mixture
    return GaussianMixture(
        (gm.means - st.mean.double()) / st.std.double(), gm.stds / st.std.double(), gm.weights
    )


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine"])
def test_nll_of_the_exact_model_is_the_exact_nll(path_name):
    data = registry.create("dataset", "gaussian_mixture_2d", n_train=4000, n_val=0, n_test=300)
    splits = data.splits()
    st = Standardizer.fit(splits["train"])
    path = registry.create("path", path_name)
    ctx = MetricContext(
        samples=splits["test"],
        test=splits["test"],
        dataset=data,
        field=_standardized_mixture(data, st).field(path),
        path=path,
        prediction="velocity",
        standardizer=st,
        generator=torch.Generator(),
        device=torch.device("cpu"),
    )
    out = registry.create("metric", "nll", nfe=80).compute(ctx)
    assert set(out) == {"nll", "nll_bits_per_dim", "nll_exact"}
    assert out["nll"] == pytest.approx(out["nll_exact"], abs=2e-3)
    assert out["nll_bits_per_dim"] == pytest.approx(out["nll"] / (2 * math.log(2)))


def test_nll_respects_max_points_and_batches():
    data = registry.create("dataset", "gaussian_mixture_2d", n_train=2000, n_val=0, n_test=100)
    splits = data.splits()
    st = Standardizer.fit(splits["train"])
    path = registry.create("path", "cond_ot")
    field = _standardized_mixture(data, st).field(path)
    ctx = MetricContext(
        samples=splits["test"],
        test=splits["test"],
        dataset=data,
        field=field,
        path=path,
        prediction="velocity",
        standardizer=st,
        generator=torch.Generator(),
        device=torch.device("cpu"),
    )
    whole = registry.create("metric", "nll", nfe=20, max_points=40).compute(ctx)
    split = registry.create("metric", "nll", nfe=20, max_points=40, batch_size=7).compute(ctx)
    assert whole["nll"] == pytest.approx(split["nll"], abs=1e-5)
    exact = -data.log_prob(splits["test"][:40].double()).mean().item()
    assert whole["nll_exact"] == pytest.approx(exact)
