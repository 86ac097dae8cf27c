"""flowforge-molecules: SE(3)-equivariant flow matching for 3-D molecules (QM9), with property
guidance, EDM's metrics and protocol.

Registers: datasets `qm9`, `qm9_fixture`, `molecule_files`; models `egnn`, `tensor_product`;
coupling `equivariant_ot`; metrics `molecule_stability`, `molecule_validity`, `fcd`,
`property_mae`; task `molecules`.
"""

from __future__ import annotations

from flowforge.hookspecs import hookimpl
from flowforge_molecules.coupling import EquivariantOT
from flowforge_molecules.datasets import QM9, MoleculeFiles, QM9Fixture
from flowforge_molecules.metrics import FCDMetric, PropertyMAE, Stability, Validity
from flowforge_molecules.models import (
    EGNNParams,
    TensorProductParams,
    build_egnn,
    build_tensor_product,
)
from flowforge_molecules.task import build_task
from flowforge_molecules.task_params import MoleculesParams


@hookimpl
def register_datasets(register):
    register("qm9", QM9, summary="QM9 with H from qm9pack (130,831 molecules), EDM split")
    register("qm9_fixture", QM9Fixture, summary="400 QM9 molecules (<= 6 heavy atoms), offline")
    register("molecule_files", MoleculeFiles, summary="The user's SDF/XYZ molecule files")


@hookimpl
def register_models(register):
    register("egnn", build_egnn, params=EGNNParams, summary="E(n)-equivariant GNN (dense)")
    register(
        "tensor_product",
        build_tensor_product,
        params=TensorProductParams,
        summary="E(3)-equivariant e3nn tensor-product network",
    )


@hookimpl
def register_couplings(register):
    register("equivariant_ot", EquivariantOT, summary="Kabsch + Hungarian alignment per molecule")


@hookimpl
def register_metrics(register):
    register("molecule_stability", Stability, summary="EDM atom and molecule stability")
    register("molecule_validity", Validity, summary="RDKit validity, uniqueness, novelty")
    register("fcd", FCDMetric, summary="Frechet ChemNet Distance (fcd_torch weights)")
    register("property_mae", PropertyMAE, summary="Property MAE by the invariant regressor")


@hookimpl
def register_tasks(register):
    register(
        "molecules",
        build_task,
        params=MoleculesParams,
        summary="Train, sample, evaluate 3-D molecules",
    )
