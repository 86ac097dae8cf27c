"""Workers for data-parallel tests: the same training and sampling in one process or in each of
the processes of `flowforge.distributed.spawn`, so a test compares the two.

Every function builds its inputs from fixed seeds, so the only difference between a call in one
process and in several is the process group: the results must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowforge.distributed import current
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import SampleSpec, TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.tasks.sampling import generate_samples
from flowforge.training import Regression, Trainer, generate_pairs


def train(config: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Train a small MLP on a 2-D mixture as `config` (a `TrainSpec`'s fields) says.

    Returns the final weights, EMA, generator state and the logged records (the main process's
    log; none in the others).
    """
    data = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.5]], stds=0.3).sample(
        512, generator=torch.Generator().manual_seed(seed)
    )
    spec = TrainSpec(**config)
    torch.manual_seed(seed)
    model = MLP(2, 32, 2, 8, self_condition=spec.self_condition)
    objective = Regression.from_spec(CondOT(), "velocity", data, spec)
    trainer = Trainer(model, objective, spec, generator=torch.Generator().manual_seed(seed))
    log: list[dict[str, Any]] = []
    trainer.fit(on_log=log.append)
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "ema": {k: v.clone() for k, v in trainer.ema.state_dict().items()},
        "generator": trainer.generator.get_state(),
        "log": log,
    }


def sample(num_samples: int, batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Samples of an untrained MLP by a stochastic solver (`generate_samples`) and reflow pairs
    (`generate_pairs`), both in batches that the processes share."""
    torch.manual_seed(seed)
    model = MLP(2, 16, 2, 8).eval()
    spec = SampleSpec(
        solver="euler_maruyama", nfe=4, num_samples=num_samples, batch_size=batch_size
    )
    with torch.no_grad():
        samples = generate_samples(
            model,
            CondOT(),
            "velocity",
            spec,
            data_shape=(2,),
            generator=torch.Generator().manual_seed(seed),
            device=torch.device("cpu"),
        )
    pairs = generate_pairs(
        model,
        CondOT(),
        "velocity",
        num_samples,
        data_shape=(2,),
        solver="euler",
        nfe=3,
        generator=torch.Generator().manual_seed(seed + 1),
        batch_size=batch_size,
    )
    return {"samples": samples, "noise": pairs.noise, "data": pairs.data}


def worker(out: str, train_config: dict[str, Any], num_samples: int, batch_size: int) -> None:
    """One process of a spawned group: train and sample, then save to `out/rank<r>.pt`."""
    results = {"train": train(train_config), "sample": sample(num_samples, batch_size)}
    torch.save(results, Path(out) / f"rank{current().rank}.pt")
