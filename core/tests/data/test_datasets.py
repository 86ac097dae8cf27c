"""Core datasets: fixed splits, independent draws, exact densities, standardisation."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.data import Dataset, GaussianMixture2D, Standardizer, TwoMoons
from flowforge.errors import SpecError


@pytest.mark.parametrize("name", ["two_moons", "gaussian_mixture_2d"])
def test_splits_are_fixed_sized_and_disjoint(name):
    data = registry.create("dataset", name, n_train=300, n_val=50, n_test=100)
    a, b = data.splits(), data.splits()
    assert {k: tuple(v.shape) for k, v in a.items()} == {
        "train": (300, 2),
        "val": (50, 2),
        "test": (100, 2),
    }
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["train"].dtype == torch.float32 and data.data_shape == (2,)
    assert not torch.isin(a["test"][:, 0], a["train"][:, 0]).any()


@pytest.mark.parametrize("name", ["two_moons", "gaussian_mixture_2d"])
def test_draw_is_reproducible_and_independent_of_the_seed_of_the_splits(name):
    data = registry.create("dataset", name)
    x = data.draw(64, torch.Generator().manual_seed(5))
    assert torch.equal(x, data.draw(64, torch.Generator().manual_seed(5)))
    assert not torch.equal(x, data.draw(64, torch.Generator().manual_seed(6)))
    other_seed = registry.create("dataset", name, seed=1).splits()["train"]
    assert not torch.equal(data.splits()["train"], other_seed)


def test_two_moons_points_lie_on_the_two_half_circles():
    moons = TwoMoons(noise=0.0)
    x = moons.draw(2000, torch.Generator().manual_seed(0)).double()
    upper = (x.norm(dim=1) - 1).abs() < 1e-5
    lower = ((x - torch.tensor([1.0, 0.5], dtype=x.dtype)).norm(dim=1) - 1).abs() < 1e-5
    assert bool((upper | lower).all())
    assert bool((x[upper, 1] >= -1e-6).all()) and bool((x[lower, 1] <= 0.5 + 1e-6).all())
    assert abs(upper.double().mean().item() - 0.5) < 0.05


def test_two_moons_noise_is_gaussian_with_the_given_std():
    clean = TwoMoons(noise=0.0).draw(5000, torch.Generator().manual_seed(3))
    noisy = TwoMoons(noise=0.2).draw(5000, torch.Generator().manual_seed(3))
    assert abs((noisy - clean).std().item() - 0.2) < 0.01


def test_gaussian_mixture_2d_log_prob_is_exact():
    data = GaussianMixture2D(n_modes=4, radius=2.0, std=0.3)
    x = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    # at a mean: the density is dominated by that mode: log(1/4 * N(0; 0, 0.09 I))
    expected = math.log(0.25) - math.log(2 * math.pi * 0.09)
    assert data.log_prob(x)[0].item() == pytest.approx(expected, abs=1e-4)
    assert data.log_prob(x)[1] < data.log_prob(x)[0]
    assert TwoMoons().log_prob(x) is None


def test_datasets_reject_unknown_and_out_of_range_params():
    with pytest.raises(SpecError, match="noise"):
        registry.create("dataset", "two_moons", noise=-1.0)
    with pytest.raises(SpecError, match="unknown key"):
        registry.create("dataset", "two_moons", n_points=10)


def test_a_fixed_dataset_cannot_draw():
    class Fixed(Dataset):
        def splits(self):
            return {k: torch.zeros(3, 2) for k in ("train", "val", "test")}

    assert not Fixed.generative and Fixed().data_shape == (2,)
    with pytest.raises(Exception, match="cannot draw"):
        Fixed().draw(3, torch.Generator())


def test_standardizer_round_trip_and_log_det():
    x = torch.randn(1000, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    st = Standardizer.fit(x)
    z = st.encode(x)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.std(0), torch.ones(2), atol=1e-5)
    assert torch.allclose(st.decode(z), x, atol=1e-5)
    assert st.log_abs_det() == pytest.approx(-math.log(float(st.std[0] * st.std[1])), rel=1e-6)
    again = Standardizer.from_state_dict(st.state_dict())
    assert torch.equal(again.mean, st.mean) and torch.equal(again.std, st.std)


def test_two_moons_labels_name_each_points_moon_and_align_with_the_splits():
    moons = TwoMoons(noise=0.0, n_train=200, n_val=10, n_test=50)
    splits, labels = moons.splits(), moons.labels()
    for key in ("train", "val", "test"):
        x, y = splits[key], labels[key]
        assert y.shape == (x.shape[0],) and y.dtype == torch.long
        # upper moon: on the unit circle around 0; lower moon: around (1, 0.5)
        centre = torch.where(y[:, None] == 1, torch.tensor([1.0, 0.5]), torch.zeros(2))
        torch.testing.assert_close((x - centre).norm(dim=1), torch.ones(len(x)), atol=1e-5, rtol=0)
    assert GaussianMixture2D().labels() is None
