"""The `molecules` task: train an equivariant flow on molecules, sample, evaluate, write SDF/XYZ.

`task.params.state` picks the generator's state. `onehot` (EDM-style): training uses the core
`Trainer` (checkpoints, resume, EMA, bf16) with `MoleculeObjective`; sampling uses
`flowforge.sample` with any registered solver and guidance (`cfg` on a property-conditioned model,
`classifier` with the invariant property regressor). `product`: the same `Trainer` with
`ProductObjective`, sampling by the core mixed sampler (`sample_product`) with `cfg` as the only
guidance. Evaluation runs
the spec's registered metrics on a `MoleculeMetricContext`. Outputs: `samples/samples.sdf`,
`samples/samples.xyz`, `plots/molecules.png` (2-D depictions), `plots/loss.png`,
`metrics.json`, `report.md`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from flowforge import registry
from flowforge.data.standardize import Standardizer
from flowforge.discrete import DiscreteSolver
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.experiment.outputs import run_checkpoints
from flowforge.experiment.plots import plot_loss
from flowforge.experiment.report import write_report
from flowforge.guidance.cfg import CFG
from flowforge.guidance.classifier import Classifier
from flowforge.solvers.base import Adaptive, Solver
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build, build_affine_path
from flowforge.tasks.fit import checkpoint_meta, load_weights
from flowforge.tasks.sampling import sampling_grid
from flowforge.tasks.training_run import TrainingRun
from flowforge.training import rng, self_conditioning
from flowforge.training.trainer import Trainer
from flowforge_molecules.atom_counts import AtomCounts
from flowforge_molecules.datasets import MoleculeDataset
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.metrics.context import MoleculeMetricContext
from flowforge_molecules.models.product_head import ProductField
from flowforge_molecules.objective import MoleculeObjective
from flowforge_molecules.outputs import depiction_grid, write_molecules
from flowforge_molecules.product import DISCRETE_KEYS, ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.product_sampling import sample_product
from flowforge_molecules.properties import PropertyModel, property_baselines, train_regressor
from flowforge_molecules.sampling import sample_molecules
from flowforge_molecules.state import MoleculeState
from flowforge_molecules.task_params import MoleculesParams


@dataclass(frozen=True)
class Setup:
    """What a run is built from: data, encodings, the property columns, the two halves of the
    training split and the test split.

    `encoding` (one-hot) also feeds the property regressor; `product` is set for
    `state: product`."""

    dataset: MoleculeDataset
    encoding: OneHotEncoding
    columns: list[int]
    generator_data: MoleculeState
    regressor_data: MoleculeState
    test: MoleculeState
    scaler: Standardizer
    product: ProductEncoding | None = None


class MoleculesTask(Task):
    """Train, sample and evaluate a 3-D molecule generator (`task: {name: molecules}`)."""

    def __init__(self, params: MoleculesParams):
        self.params = params

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec, p = ctx.spec, self.params
        path = build_affine_path(spec.path)
        setup = self._setup(ctx, path)
        conditioned = bool(p.properties) and p.condition
        features = (setup.product or setup.encoding).num_features
        model = build(
            "model",
            spec.model,
            "model",
            num_features=features,
            num_properties=len(setup.columns) if conditioned else 0,
        )
        if setup.product is not None:
            model = ProductField(model, *setup.product.num_states)
        model = model.to(ctx.device)
        record = self._train(ctx, setup, model, path, conditioned)
        model.eval()
        regressor = None
        if p.properties:
            regressor = train_regressor(
                ctx, setup.encoding, setup.regressor_data, setup.columns, setup.scaler, p.regressor
            )
        start = time.perf_counter()
        samples, targets = self._sample(ctx, setup, model, path, regressor, conditioned)
        record["sample_seconds"] = time.perf_counter() - start
        record["molecules_per_second"] = len(samples) / max(record["sample_seconds"], 1e-9)
        start = time.perf_counter()
        mols = samples.to_lists(setup.encoding.elements)
        metrics = self._evaluate(ctx, setup, model, path, samples, mols, targets, regressor)
        record["evaluate_seconds"] = time.perf_counter() - start
        self._write(ctx, mols, metrics, record)
        return metrics

    # ---- set-up -------------------------------------------------------------------------

    def _setup(self, ctx: TaskContext, path) -> Setup:
        spec, p = ctx.spec, self.params
        rng.seed_everything(spec.seed)
        dataset = build("dataset", spec.data, "data")
        if not isinstance(dataset, MoleculeDataset):
            raise SpecError(
                [
                    (
                        "data.name",
                        f"{spec.data.name!r} is not a molecule dataset; "
                        "use qm9, qm9_fixture or molecule_files",
                    )
                ]
            )
        names = list(dataset.property_names)
        unknown = [q for q in p.properties if q not in names]
        if unknown:
            raise SpecError(
                [
                    (
                        "task.params.properties",
                        f"{unknown} are not properties of {spec.data.name!r}; it has {names}",
                    )
                ]
            )
        columns = [names.index(q) for q in p.properties]
        encoding = OneHotEncoding(
            dataset.elements,
            dataset.charges,
            type_scale=p.type_scale,
            charge_scale=p.charge_scale,
        )
        states = dataset.states()
        train = states["train"]
        gen_rows = reg_rows = torch.arange(len(train))
        if p.properties and p.protocol == "edm":
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(spec.seed))
            half = len(train) // 2
            reg_rows, gen_rows = perm[:half].sort().values, perm[half:].sort().values
        props = train.properties[:, columns] if columns else torch.zeros(len(train), 0)
        scaler = Standardizer.fit(props[gen_rows]) if columns else _no_scaler()
        product = None
        if p.state == "product":
            product = ProductEncoding(dataset.elements, path, p.discrete_path, dataset.charges)
            self._check_product(ctx, product)
        return Setup(
            dataset,
            encoding,
            columns,
            train.index(gen_rows),
            train.index(reg_rows),
            states["test"],
            scaler,
            product,
        )

    def _check_product(self, ctx: TaskContext, product: ProductEncoding) -> None:
        """What `state: product` cannot do, named before any training (`product`: the
        encoding whose discrete paths the discrete solver will run on)."""
        spec, p = ctx.spec, self.params
        issues = []
        solver = build("solver", spec.sample.solver, "sample.solver")
        if not _one_call_per_step(solver, spec.sample.nfe):
            issues.append(
                (
                    "sample.solver",
                    f"{spec.sample.solver.name!r} does not make one evaluation per step; "
                    "state: product shares one network call per step: use euler, ddim, "
                    "dpm_solver_pp, unipc (euler_maruyama or reverse_sde with train.coupling: "
                    "independent) or state: onehot",
                )
            )
        solver = build("solver", p.discrete_solver, "task.params.discrete_solver")
        if not isinstance(solver, DiscreteSolver):
            issues.append(
                (
                    "task.params.discrete_solver",
                    f"{p.discrete_solver.name!r} is not a discrete solver; use ancestral, "
                    "tau_leaping or ctmc_euler",
                )
            )
        elif problem := solver.path_problem(product.path.paths[DISCRETE_KEYS[0]]):
            issues.append(("task.params.discrete_solver.params.eta", problem))
        for i, g in enumerate(spec.guidance):
            if g.name != "cfg":
                issues.append(
                    (
                        f"guidance[{i}]",
                        f"{g.name!r} is not available with task.params.state: product (only "
                        "cfg is); use state: onehot for it",
                    )
                )
        if issues:
            raise SpecError(issues)

    def _train(self, ctx: TaskContext, setup: Setup, model: nn.Module, path, conditioned: bool):
        spec, p = ctx.spec, self.params
        meta = checkpoint_meta(ctx, (setup.dataset.max_atoms, setup.encoding.num_features))
        meta.update(
            elements=list(setup.encoding.elements),
            charges=list(setup.encoding.charges),
            properties=list(p.properties) if conditioned else [],
            state=p.state if p.state == "onehot" else f"product/{p.discrete_path}",
        )
        if spec.model.checkpoint is not None:
            load_weights(model, spec.model.checkpoint, meta)
            return {"train_steps": 0}
        if spec.train is None or spec.train.steps == 0:
            return {"train_steps": 0}
        self_conditioning.check_model(model, spec.train.self_condition, spec.model.name)
        data = setup.generator_data
        coupling = None
        if spec.train.coupling.name != "independent":
            coupling = registry.create(
                "coupling", spec.train.coupling.name, **spec.train.coupling.params
            )
        sampler = registry.create(
            "time_sampler", spec.train.time_sampler.name, **spec.train.time_sampler.params
        )
        props = None
        if conditioned:
            props = setup.scaler.encode(data.properties[:, setup.columns]).to(ctx.device)
        if setup.product is not None:
            encoded = setup.product.encode(data)
            objective = ProductObjective(
                setup.product,
                spec.model.prediction,
                {k: v.to(ctx.device) for k, v in encoded.items()},
                properties=props,
                cond_drop=p.cond_drop,
                weights=p.loss_weights.model_dump(),
                discrete_loss=p.discrete_loss,
                loss=spec.train.loss,
                time_sampler=sampler,
                coupling=coupling,
                size_batches=p.size_batches,
                self_condition=spec.train.self_condition,
            )
        else:
            objective = MoleculeObjective(
                path,
                spec.model.prediction,
                setup.encoding,
                setup.encoding.encode(data).to(ctx.device),
                data.mask.to(ctx.device),
                properties=props,
                cond_drop=p.cond_drop,
                loss=spec.train.loss,
                time_sampler=sampler,
                coupling=coupling,
                self_condition=spec.train.self_condition,
                size_batches=p.size_batches,
            )
        training = TrainingRun(ctx, meta)
        trainer = Trainer(
            model, objective, spec.train, generator=rng.generator(spec.seed, "train", ctx.device)
        )
        if training.state is not None:
            trainer.load_state_dict(training.state)
        summary = training.train(trainer, standardizer=setup.scaler)
        model.load_state_dict(trainer.ema.state_dict())
        return training.record(summary)

    # ---- sampling -----------------------------------------------------------------------

    def _targets(self, setup: Setup, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Atom counts and property targets (data units) of one batch."""
        p, data = self.params, setup.generator_data
        n_atoms = data.n_atoms[rows]
        if not setup.columns:
            return n_atoms, torch.zeros(len(rows), 0)
        if p.targets is not None:
            missing = [q for q in p.properties if q not in p.targets]
            if missing:
                raise SpecError([("task.params.targets", f"no target for {missing}")])
            fixed = torch.tensor([p.targets[q] for q in p.properties], dtype=torch.float32)
            return n_atoms, fixed.expand(len(rows), -1)
        return n_atoms, data.properties[rows][:, setup.columns]

    def _sample(self, ctx, setup: Setup, model, path, regressor, conditioned):
        spec, p = ctx.spec, self.params
        solver = build("solver", spec.sample.solver, "sample.solver")
        discrete_solver = build(
            "solver", self.params.discrete_solver, "task.params.discrete_solver"
        )
        grid = sampling_grid(spec.sample, solver)
        guidance = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(spec.guidance)]
        gen = rng.generator(spec.seed, "sample", ctx.device)
        max_atoms = setup.dataset.max_atoms
        fixed = AtomCounts.fixed(p.n_atoms, max_atoms) if p.n_atoms else None
        bar = ctx.progress.add_task("sample", total=spec.sample.num_samples, info="")
        states, targets, remaining = [], [], spec.sample.num_samples
        while remaining > 0:
            b = min(spec.sample.batch_size, remaining)
            rows = torch.randint(
                0, len(setup.generator_data), (b,), generator=gen, device=gen.device
            ).cpu()
            n_atoms, target = self._targets(setup, rows)
            if fixed is not None:
                n_atoms = fixed.sample(b, gen)
            std = setup.scaler.encode(target).to(ctx.device) if setup.columns else None
            if setup.product is not None:
                state = sample_product(
                    model,
                    setup.product,
                    spec.model.prediction,
                    n_atoms,
                    solver=solver,
                    discrete_solver=discrete_solver,
                    nfe=spec.sample.nfe,
                    max_atoms=max_atoms,
                    generator=gen,
                    device=ctx.device,
                    properties=std if conditioned else None,
                    cfg=next((g for g in guidance if isinstance(g, CFG)), None),
                    t_span=spec.sample.t_span,
                    time_grid=grid,
                )
            else:
                state = sample_molecules(
                    model,
                    path,
                    spec.model.prediction,
                    setup.encoding,
                    n_atoms,
                    solver=solver,
                    nfe=spec.sample.nfe,
                    max_atoms=max_atoms,
                    generator=gen,
                    device=ctx.device,
                    properties=std if conditioned else None,
                    guidance=guidance,
                    bind=_binder(regressor, std),
                    time_grid=grid,
                    t_span=spec.sample.t_span,
                )
            states.append(state.to("cpu"))
            targets.append(target)
            remaining -= b
            ctx.progress.update(bar, advance=b)
        return MoleculeState.cat(states), torch.cat(targets)

    # ---- evaluation and outputs ---------------------------------------------------------

    def _evaluate(
        self, ctx, setup: Setup, model, path, samples: MoleculeState, mols, targets, regressor
    ):
        spec = ctx.spec
        splits = setup.dataset.molecules()
        baselines = {}
        if regressor is not None:
            baselines = property_baselines(regressor, setup, self.params.properties)
        mctx = MoleculeMetricContext(
            samples=samples.pos,
            test=setup.test.pos,
            dataset=setup.dataset,
            field=model,
            path=path,
            prediction=spec.model.prediction,
            standardizer=setup.scaler,
            generator=rng.generator(spec.seed, "metric"),
            device=ctx.device,
            t_span=spec.sample.t_span,
            molecules=mols,
            train_smiles=list(splits["train"].smiles),
            reference_smiles=list(splits["test"].smiles),
            targets=targets,
            property_names=tuple(self.params.properties),
            predict=None if regressor is None else regressor.predict,
            states=samples,
            baselines=baselines,
        )
        out: dict[str, float] = {}
        for i, ref in enumerate(spec.evaluate.metrics):
            metric = build("metric", ref, f"evaluate.metrics[{i}]")
            with torch.no_grad():
                values = metric.compute(mctx)
            clash = sorted(set(values) & set(out))
            if clash:
                raise SpecError(
                    [
                        (
                            f"evaluate.metrics[{i}]",
                            f"{ref.name!r} reports {', '.join(clash)} again; list each metric once",
                        )
                    ]
                )
            out.update(values)
        return out

    def _write(self, ctx, mols, metrics, record) -> None:
        run, spec = ctx.run, ctx.spec
        files = [run.spec_path, *write_molecules(mols, run.samples)]
        if spec.output.plots:
            made = [
                depiction_grid(mols, run.plots / "molecules.png", self.params.depictions),
                plot_loss(run.read_log(), run.plots / "loss.png"),
            ]
            files += [f for f in made if f is not None]
        run.write_metrics({**metrics, **record})
        files += [run.metrics_path, *run_checkpoints(run), run.report_path]
        write_report(run, spec, metrics, record, files, ctx.resume_command)


def _one_call_per_step(solver: Solver, nfe: int) -> bool:
    """Whether `solver` makes exactly one evaluation per step (what the mixed sampler needs)."""
    if isinstance(solver, Adaptive | DiscreteSolver):
        return False
    try:
        return solver.steps_for_nfe(nfe) == nfe
    except InvalidArgumentError:
        return False


def _no_scaler() -> Standardizer:
    return Standardizer(torch.zeros(0), torch.ones(0))


def _binder(regressor: PropertyModel | None, target: Tensor | None):
    """Give `classifier` guidance the regressor's log-likelihood for this batch's targets."""

    def bind(g, mask: Tensor):
        if not isinstance(g, Classifier) or regressor is None or target is None:
            return g

        def log_likelihood(z: Tensor, t: Tensor) -> Tensor:
            return -0.5 * ((regressor.standardised(z, mask) - target.to(z)) ** 2).sum(1)

        return dataclasses.replace(g, log_likelihood=log_likelihood)

    return bind


def build_task(params: MoleculesParams) -> MoleculesTask:
    """Factory of the registered `molecules` task."""
    return MoleculesTask(params)


__all__ = ["MoleculesTask", "build_task"]
