"""A spec's `sample.time_grid` names a tuned grid file: sampling uses it, or says why not."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.distributed import seeded_batches
from flowforge.paths import CondOT
from flowforge.spec.models import SampleSpec
from flowforge.targets import GaussianMixture
from flowforge.tasks.sampling import generate_samples
from flowforge.tuning import load_schedule, tune_schedule

GM = GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0]], stds=[0.5, 0.3])


@pytest.fixture(scope="module")
def tuned_file(tmp_path_factory):
    pilot = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    tuned = tune_schedule(
        GM.field(CondOT()), pilot, path="cond_ot", prediction="velocity", solver="midpoint",
        nfe=6, budget=120, reference_nfe=60,
    )  # fmt: skip
    return tuned.save(tmp_path_factory.mktemp("tuned") / "midpoint-nfe6.json")


def test_spec_time_grid_file_is_the_tuned_grid(tuned_file):
    spec = SampleSpec(solver="midpoint", nfe=6, num_samples=8, time_grid=str(tuned_file))
    kw = dict(data_shape=(2,), device=torch.device("cpu"))
    field = GM.field(CondOT())
    ours = generate_samples(field, CondOT(), "velocity", spec, generator=torch.Generator(), **kw)
    (batch,) = seeded_batches(8, spec.batch_size, torch.Generator())  # the one batch's draws
    noise = torch.randn(8, 2, generator=batch.generator)
    grid = load_schedule(tuned_file)
    direct = flowforge.sample(
        field, noise, path="cond_ot", prediction="velocity", solver="midpoint", nfe=6,
        time_grid=grid,
    )  # fmt: skip
    uniform = flowforge.sample(
        field, noise, path="cond_ot", prediction="velocity", solver="midpoint", nfe=6
    )
    assert torch.equal(ours, direct) and not torch.equal(direct, uniform)


def test_spec_time_grid_for_another_nfe_names_the_field(tuned_file):
    spec = SampleSpec(solver="midpoint", nfe=8, num_samples=8, time_grid=str(tuned_file))
    with pytest.raises(flowforge.InvalidArgumentError, match=r"sample\.time_grid: .*nfe=6"):
        generate_samples(
            GM.field(CondOT()), CondOT(), "velocity", spec, data_shape=(2,),
            generator=torch.Generator(), device=torch.device("cpu"),
        )  # fmt: skip


def test_spec_time_grid_rejects_other_strings():
    with pytest.raises(ValueError, match="time_grid"):
        SampleSpec(time_grid="karras")
