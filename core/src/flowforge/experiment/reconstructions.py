"""Write an inverse problem's outputs: measurements, reconstructions, posterior mean and std,
plots, metrics.json and report.md.

Files in the run directory (arrays in data units, `.npy`): `measurement.npy` `y (M, ...)`;
`ground_truth.npy` `x (M, *data_shape)` when the measurements were simulated;
`reconstructions.npy` `(M, S, *data_shape)`, S posterior samples per measurement;
`posterior_mean.npy` and `posterior_std.npy` `(M, *data_shape)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from flowforge.distributed import current
from flowforge.experiment.directory import RunDir
from flowforge.experiment.outputs import finish_run
from flowforge.experiment.plots import plot_loss, plot_posterior
from flowforge.spec.models import ExperimentSpec


@dataclass(frozen=True)
class Reconstructions:
    """What an inverse problem produced, in data units (see the module docstring for shapes).

    `exact`: exact posterior samples of the first measurement `(S, *data_shape)` where the
    prior is known (for the plot only); `data`: held-out points drawn behind the samples.
    """

    y: Tensor
    truth: Tensor | None
    samples: Tensor
    mean: Tensor
    std: Tensor
    data: Tensor
    exact: Tensor | None = None


def write_reconstructions(
    run: RunDir,
    spec: ExperimentSpec,
    result: Reconstructions,
    metrics: dict[str, float],
    record: dict[str, Any],
    resume_command: str,
) -> list[Path]:
    """Write every file of the run and its report; returns the files written (none outside
    the main process of a data-parallel run)."""
    if not current().is_main:
        return []
    arrays = {
        "measurement.npy": result.y,
        "ground_truth.npy": result.truth,
        "reconstructions.npy": result.samples,
        "posterior_mean.npy": result.mean,
        "posterior_std.npy": result.std,
    }
    files = [run.spec_path]
    for name, array in arrays.items():
        if array is not None:
            np.save(run.root / name, array.detach().cpu().numpy())
            files.append(run.root / name)
    if spec.output.plots:
        run.plots.mkdir(parents=True, exist_ok=True)
        truth = None if result.truth is None else result.truth[0]
        made = [
            plot_posterior(
                result.samples[0], result.data, run.plots / "posterior.png", truth, result.exact
            ),
            plot_loss(run.read_log(), run.plots / "loss.png"),
        ]
        files += [p for p in made if p is not None]
    return finish_run(run, spec, files, metrics, record, resume_command)
