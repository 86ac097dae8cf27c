"""Data parallelism on the CPU: two gloo processes train and sample as one process does."""

from __future__ import annotations

import pytest
import torch

from flowforge.distributed import World, spawn
from flowforge.errors import InvalidArgumentError
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.testing import ddp
from flowforge.training import Objective, Regression, Trainer

# The global batch 32 splits into two shards of 16, each into two micro-batches; self-
# conditioning, stratified times and an EMA warm-up draw from the generator alongside the data.
CONFIG = {
    "steps": 12,
    "batch_size": 32,
    "grad_accumulation": 2,
    "lr": 1e-2,
    "ema_decay": 0.9,
    "ema_warmup": 3,
    "self_condition": True,
    "time_sampler": {"name": "logit_normal", "params": {"draws": "stratified"}},
    "log_every": 4,
    "checkpoint_every": 100,
}
# 5 batches of 24 (the last of 4) over 2 processes: 3 batches and 2, uneven on purpose.
NUM_SAMPLES, BATCH = 100, 24
SLOW = pytest.mark.slow  # two processes start (and import torch): ~12 s on an idle machine


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Each rank's results from one spawned group of two processes."""
    out = tmp_path_factory.mktemp("ddp")
    spawn(ddp.worker, 2, str(out), CONFIG, NUM_SAMPLES, BATCH)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@SLOW
def test_two_processes_train_as_one_process_with_the_same_global_batch(ranks):
    single = ddp.train(CONFIG)
    for part in ("model", "ema"):
        for name, value in single[part].items():
            got = ranks[0]["train"][part][name]
            assert torch.allclose(got, value, rtol=1e-4, atol=1e-6), f"{part}.{name}"
    # not by accident: training moved the weights far more than the tolerance
    start = ddp.train({**CONFIG, "steps": 0})["model"]
    assert max((single["model"][k] - start[k]).abs().max() for k in start) > 1e-2


@SLOW
def test_processes_stay_identical_and_only_the_main_process_logs(ranks):
    first, second = ranks[0]["train"], ranks[1]["train"]
    assert all(torch.equal(first["model"][k], second["model"][k]) for k in first["model"])
    assert torch.equal(first["generator"], second["generator"])
    assert second["log"] == []
    single = ddp.train(CONFIG)["log"]
    assert [r["step"] for r in first["log"]] == [r["step"] for r in single] == [4, 8, 12]
    # the logged loss is the global batch's mean, averaged over the processes
    for got, expected in zip(first["log"], single, strict=True):
        assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)


@SLOW
def test_sharded_sampling_equals_one_process(ranks):
    single = ddp.sample(NUM_SAMPLES, BATCH)
    for rank in ranks:
        for key, value in single.items():
            assert rank["sample"][key].shape == (NUM_SAMPLES, 2)
            assert torch.equal(rank["sample"][key], value), key
    # distinct batches draw distinct noise (seeded by their first index, not all alike)
    noise = single["noise"]
    assert not torch.allclose(noise[:24], noise[24:48])


def test_global_batch_must_split_evenly_among_processes():
    with pytest.raises(InvalidArgumentError, match=r"train.batch_size .* divisible by the number"):
        World(rank=0, size=3).batch_part(32)
    assert World(rank=1, size=4).batch_part(32) == slice(8, 16)
    spans = World(0, 3).spans(10)
    assert [len(s) for s in spans] == [4, 3, 3]
    assert [i for s in spans for i in s] == list(range(10))


class _NoPart(Objective):
    def draw(self, n, generator):
        return {"x": torch.zeros(n, 2)}

    def loss(self, network, batch):
        return batch["x"].sum(1)


def test_a_trainer_of_several_processes_refuses_what_it_cannot_split():
    model, config = MLP(2, 8, 1, 4), TrainSpec(steps=1, batch_size=32, grad_accumulation=4)
    gen = torch.Generator()
    with pytest.raises(InvalidArgumentError, match=r"_NoPart.draw\(n, generator\) takes no `part`"):
        Trainer(model, _NoPart(), config, generator=gen, world=World(0, 2))
    objective = Regression(CondOT(), "velocity", torch.randn(64, 2))
    with pytest.raises(InvalidArgumentError, match=r"grad_accumulation \(4\) must divide .* = 5"):
        Trainer(model, objective, config.model_copy(update={"batch_size": 10}), generator=gen,
                world=World(1, 2))  # fmt: skip
