"""What molecule metrics read: the generated molecules and the references of the run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.metrics.base import MetricContext
from flowforge_molecules.metrics.chemistry import to_rdkit, valid_smiles
from flowforge_molecules.metrics.stability import Molecule


@dataclass(frozen=True)
class MoleculeMetricContext(MetricContext):
    """A `MetricContext` with molecules: `molecules` generated, each `(atomic numbers,
    pos (n, 3), formal charges)`; `train_smiles` (novelty) and `reference_smiles` (FCD);
    `targets (B, P)` the requested properties in data units with `property_names`, and
    `predict(state) -> (B, P)` the property regressor in data units (None without one);
    `states` the decoded generated batch (for `predict`); `baselines` extra property rows.
    """

    molecules: Sequence[Molecule] = ()
    train_smiles: Sequence[str] = ()
    reference_smiles: Sequence[str] = ()
    targets: Tensor | None = None
    property_names: tuple[str, ...] = ()
    predict: Callable[..., Tensor] | None = None
    states: object | None = None
    baselines: dict[str, float] = field(default_factory=dict)

    @cached_property
    def smiles(self) -> list[str | None]:
        """Largest-fragment SMILES of each generated molecule, None where invalid."""
        return [valid_smiles(to_rdkit(*m)) for m in self.molecules]


def molecule_context(ctx: MetricContext, metric: str) -> MoleculeMetricContext:
    if not isinstance(ctx, MoleculeMetricContext):
        raise InvalidArgumentError(
            f"metric {metric!r} judges generated molecules; use it with `task: molecules`"
        )
    return ctx
