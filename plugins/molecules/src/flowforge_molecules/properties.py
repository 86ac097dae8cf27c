"""The property regressor in a run: training (core `Trainer`), predictions, EDM's baselines.

EDM's protocol (Hoogeboom et al. 2022, sec. 5.2): the regressor is trained on half Da of the
training split and judges molecules from a generator trained on the other half Db. Its MAE on
Db's real molecules is the lower bound; the MAE against Db's properties shuffled among molecules
is the upper bound ("naive"); predicting from the atom count alone (the mean property per count
in Da, the best such predictor in squared error) is the "#atoms" baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.data.standardize import Standardizer
from flowforge.spec.models import TrainSpec
from flowforge.training import rng
from flowforge.training.trainer import Trainer
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.regressor import PropertyObjective, PropertyRegressor, TimeFree
from flowforge_molecules.state import MoleculeState
from flowforge_molecules.task_params import RegressorSpec

CHUNK = 512


class PropertyModel:
    """A trained regressor with its encoding and property standardiser."""

    def __init__(self, net: PropertyRegressor, encoding: OneHotEncoding, scaler: Standardizer):
        self.net, self.encoding, self.scaler = net, encoding, scaler
        self.device = next(net.parameters()).device

    def standardised(self, x: Tensor, mask: Tensor) -> Tensor:
        """Standardised predictions `(B, P)` for encoded states `x (B, N, F)` (differentiable)."""
        return self.net(x, mask)

    @torch.no_grad()
    def predict(self, state: MoleculeState) -> Tensor:
        """Predictions in data units `(B, P)` for decoded molecules, on the CPU."""
        out = []
        for i in range(0, len(state), CHUNK):
            part = state.index(torch.arange(i, min(i + CHUNK, len(state))))
            x = self.encoding.encode(part).to(self.device)
            out.append(self.scaler.decode(self.net(x, part.mask.to(self.device))).cpu())
        return torch.cat(out)


def train_regressor(
    ctx,
    encoding: OneHotEncoding,
    data: MoleculeState,
    columns: list[int],
    scaler: Standardizer,
    spec: RegressorSpec,
) -> PropertyModel:
    """Train (or reload from `<run>/regressor.pt`) the regressor on `data`'s properties."""
    net = PropertyRegressor(encoding.num_features, len(columns), spec.hidden, spec.layers)
    net = net.to(ctx.device)
    file = ctx.run.root / "regressor.pt"
    if file.is_file():
        net.load_state_dict(torch.load(file, weights_only=True, map_location=ctx.device))
    elif spec.steps:
        x = encoding.encode(data).to(ctx.device)
        y = scaler.encode(data.properties[:, columns]).to(ctx.device)
        objective = PropertyObjective(x, data.mask.to(ctx.device), y)
        config = TrainSpec(
            steps=spec.steps,
            batch_size=spec.batch_size,
            lr=spec.lr,
            lr_schedule="cosine",
            ema_decay=0.999,
            checkpoint_every=spec.steps,
            log_every=max(1, spec.steps // 10),
        )
        gen = rng.generator(ctx.spec.seed, "regressor", ctx.device)
        bar = ctx.progress.add_task("regressor", total=spec.steps, info="")
        trainer = Trainer(TimeFree(net), objective, config, generator=gen)
        trainer.fit(on_step=lambda s: ctx.progress.update(bar, completed=s))
        TimeFree(net).load_state_dict(trainer.ema.state_dict())
        torch.save(net.state_dict(), file)
    net.eval()
    return PropertyModel(net, encoding, scaler)


def property_baselines(model: PropertyModel, setup, names: list[str]) -> dict[str, float]:
    """EDM's reference MAEs on the generator's half Db: regressor on real molecules, shuffled
    properties, and the atom-count-only predictor fitted on Da."""
    db, da = setup.generator_data, setup.regressor_data
    y = db.properties[:, setup.columns]
    pred = model.predict(db)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    counts_a, counts_b = da.n_atoms, db.n_atoms
    ya = da.properties[:, setup.columns]
    by_count = torch.stack(
        [
            ya[counts_a == n].mean(0) if bool((counts_a == n).any()) else ya.mean(0)
            for n in range(int(max(counts_a.max(), counts_b.max())) + 1)
        ]
    )
    out = {}
    for j, name in enumerate(names):
        out[f"property_mae_{name}_real_molecules"] = float((pred[:, j] - y[:, j]).abs().mean())
        out[f"property_mae_{name}_shuffled"] = float((pred[:, j] - y[perm, j]).abs().mean())
        out[f"property_mae_{name}_n_atoms"] = float((by_count[counts_b, j] - y[:, j]).abs().mean())
    return out
