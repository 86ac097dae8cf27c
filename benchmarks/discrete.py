"""Masked diffusion vs a same-size autoregressive transformer at equal training time, on
character-level text (CPython's pydoc topics, 10% of the documents held out) and QM9 SMILES.

Each model keeps the weights (EMA) with the lowest validation bits/token, evaluated every
--eval-every steps (evaluation time is not charged to the training budget): the corpora are small
(text: ~400k training characters, many epochs in minutes), and the AR model overfits long before
the budget ends, so its final weights would compare an overfitted model (the test NLL of the final
weights is reported too). Reports test NLL (diffusion: the ELBO bound with --nll-timesteps Monte
Carlo times per sequence; AR: exact) in bits per token, sample quality (text: n-gram JS
divergence to held-out text against a held-out reference of the same size; SMILES: validity,
uniqueness, novelty, optionally FCD), and samples/s at each --nfes with and without the RADD/MDLM
cache (the diffusion model is time-independent, so the cache is exact and both samplers return
identical samples for one seed). Prints a table; merges each data set's results into --out, so
data sets can run in separate invocations.

    python benchmarks/discrete.py --tiny                       # CPU smoke, seconds
    python benchmarks/discrete.py --device cuda --datasets text --train-seconds 150
    python benchmarks/discrete.py --device cuda --datasets smiles --train-seconds 150 --fcd
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from flowforge_discrete import autoregressive
from flowforge_discrete.data import QM9Smiles, QM9SmilesParams, Text, TextParams
from flowforge_discrete.metrics import (
    FCD,
    NGramJS,
    NLLBits,
    SamplingSpeed,
    SequenceContext,
    SmilesQuality,
)
from flowforge_discrete.models import TransformerParams, build_transformer
from flowforge_discrete.selection import KeepBest

from flowforge.discrete import DiscreteDiffusion, MaskedPath
from flowforge.discrete import sample as discrete_sample
from flowforge.spec.models import TrainSpec
from flowforge.training import Trainer

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU smoke sizes (seconds)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--datasets", default="text,smiles")
    p.add_argument("--train-seconds", type=float, default=600.0, help="per model (equal time)")
    p.add_argument("--seq-len", type=int, default=128, help="text window length")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--dropout", type=float, default=0.0, help="both models")
    p.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    p.add_argument("--nfes", default="32,128,512")
    p.add_argument("--samples", type=int, default=256, help="samples per quality/speed run")
    p.add_argument("--nll-timesteps", type=int, default=8)
    p.add_argument("--nll-sequences", type=int, default=2000)
    p.add_argument("--max-molecules", type=int, default=None, help="QM9 subset (default: all)")
    p.add_argument("--fcd", action="store_true", help="also FCD on SMILES (fcd_torch)")
    p.add_argument("--out", type=Path, default=HERE / "discrete.json")
    a = p.parse_args()
    if a.tiny:
        a.train_seconds, a.seq_len, a.dim, a.depth, a.heads = 3.0, 32, 32, 1, 2
        a.batch_size, a.nfes, a.samples, a.nll_sequences = 32, "8,32", 8, 32
        a.eval_every = 5
        a.nll_timesteps, a.max_molecules = 2, a.max_molecules or 500
        if a.out == HERE / "discrete.json":
            a.out = Path("/tmp/discrete_tiny.json")
    return a


def dataset(name: str, a: argparse.Namespace):
    if name == "text":
        return Text(TextParams(seq_len=a.seq_len, max_chars=20000 if a.tiny else None))
    return QM9Smiles(QM9SmilesParams(max_molecules=a.max_molecules))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train(model, objective, keep: KeepBest, a, seed: int) -> dict:
    """Train for `--train-seconds` of wall clock (equal for both models, validations excluded);
    leaves the best-validation EMA weights in `model` and returns the final EMA weights too."""
    spec = TrainSpec(
        steps=10**9,
        batch_size=a.batch_size,
        lr=a.lr,
        ema_decay=0.999,
        lr_warmup=100,
        log_every=50,
        max_nonfinite=20,
        eval_every=a.eval_every,
    )
    gen = torch.Generator(a.device).manual_seed(seed)
    trainer = Trainer(model, objective, spec, generator=gen)
    steps, spent = [], [0.0]

    def validate(m) -> dict[str, float]:
        _sync(a.device)
        start = time.perf_counter()
        out = keep(m)
        steps.append(trainer.step)
        spent[0] += time.perf_counter() - start
        return out

    start = time.perf_counter()
    summary = trainer.fit(
        evaluate=validate,
        should_stop=lambda: time.perf_counter() - start - spent[0] > a.train_seconds,
    )
    if not steps or steps[-1] != trainer.step:
        trainer.evaluate(validate)
    final = trainer.ema.state_dict()
    model.load_state_dict(keep.state)
    model.eval()
    record = {
        "steps": summary.step,
        "seconds": summary.seconds - spent[0],
        "validation_seconds": spent[0],
        "loss": summary.loss,
        "best_step": steps[keep.best_call],
        "val_bits_per_token": dict(zip(steps, keep.history, strict=True)),
    }
    return {"record": record, "final": final}


def run_dataset(name: str, a: argparse.Namespace) -> dict:
    data = dataset(name, a)
    splits = {k: v.to(a.device) for k, v in data.splits().items()}
    length, vocab = splits["train"].shape[1], data.vocab_size
    path = MaskedPath(vocab_size=vocab)
    params = TransformerParams(
        dim=a.dim, depth=a.depth, heads=a.heads, dropout=a.dropout, time_input=False
    )
    models = {
        "diffusion": build_transformer(params, (length,), vocab, path.num_states),
        "autoregressive": build_transformer(params, (length,), vocab, vocab + 1, causal=True),
    }
    objectives = {
        "diffusion": DiscreteDiffusion(path, splits["train"]),
        "autoregressive": autoregressive.Autoregressive(splits["train"], vocab),
    }
    out: dict = {"vocab": vocab, "seq_len": length, "train_sequences": len(splits["train"])}
    for kind, model in models.items():
        model.to(a.device)
        keep = KeepBest(splits["val"][: a.nll_sequences], kind, path, num_timesteps=a.nll_timesteps)
        trained = train(model, objectives[kind], keep, a, seed=0)
        out[kind] = {
            "params": sum(p.numel() for p in model.parameters()),
            "train": trained["record"],
        }
        ctx = lambda samples, k=kind, m=model: SequenceContext(
            samples=samples,
            test=splits["test"],
            train=splits["train"],
            dataset=data,
            model=m,
            kind=k,
            path=path,
            device=torch.device(a.device),
            generator=torch.Generator(a.device).manual_seed(1),
        )
        nll = NLLBits(num_timesteps=a.nll_timesteps, max_sequences=a.nll_sequences)
        out[kind].update(nll.compute(ctx(None)))
        best = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(trained["final"])
        final = nll.compute(ctx(None))["nll_bits_per_token"]
        out[kind]["nll_bits_per_token_final_weights"] = final
        model.load_state_dict(best)
        nfe = max(int(n) for n in a.nfes.split(","))
        gen = torch.Generator(a.device).manual_seed(2)
        if kind == "diffusion":
            x0 = path.source((a.samples, length), gen, a.device)
            samples = discrete_sample(
                model, x0, path=path, solver="mdlm_cached", nfe=nfe, generator=gen
            ).x
        else:
            start = time.perf_counter()
            samples, _ = autoregressive.sample(model, a.samples, length, vocab, gen, a.device)
            _sync(a.device)
            out[kind]["samples_per_s"] = a.samples / (time.perf_counter() - start)
        quality = [NGramJS(max_n=4)] if name == "text" else [SmilesQuality()]
        if name != "text" and a.fcd:
            quality.append(FCD())
        for metric in quality:
            out[kind].update(metric.compute(ctx(samples)))
        out[kind]["examples"] = data.decode(samples[:3])
        if kind == "diffusion":
            speed = SamplingSpeed(nfes=[int(n) for n in a.nfes.split(",")], num_samples=a.samples)
            out[kind]["speed"] = speed.compute(ctx(samples))
    return out


def _nfes(speed: dict) -> list[int]:
    """The NFEs a diffusion run timed, from its keys `speed_<nfe>_samples_per_s`."""
    keys = [k.split("_")[1] for k in speed if k.endswith("_samples_per_s") and "cached" not in k]
    return sorted(int(n) for n in keys)


def table(results: dict) -> str:
    rows = [
        "| data | model | params | train steps (best) | NLL bits/tok (final weights) | quality "
        "| samples/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for kind in ("diffusion", "autoregressive"):
            m = r[kind]
            q = (
                f"JS4 {m['ngram_js_4']:.3f} (ref {m['ngram_js_4_baseline']:.3f}, "
                f"{m['ngram_js_sequences']:.0f} seq)"
                if name == "text"
                else f"valid {m['smiles_validity']:.3f} uniq {m['smiles_uniqueness']:.3f} "
                f"novel {m['smiles_novelty']:.3f}" + (f" FCD {m['fcd']:.2f}" if "fcd" in m else "")
            )
            if kind == "diffusion":
                sp = m["speed"]
                sps = " / ".join(
                    f"{n}: {u:.1f} -> {c:.1f} cached (x{c / u:.2f})"
                    for n, u, c in (
                        (n, sp[f"speed_{n}_samples_per_s"], sp[f"speed_{n}_cached_samples_per_s"])
                        for n in _nfes(sp)
                    )
                )
            else:
                sps = f"{m['samples_per_s']:.1f}"
            tr = m["train"]
            rows.append(
                f"| {name} | {kind} | {m['params']} | {tr['steps']} ({tr.get('best_step', '-')}) "
                f"| {m['nll_bits_per_token']:.4f} "
                f"({m.get('nll_bits_per_token_final_weights', float('nan')):.4f}) | {q} | {sps} |"
            )
        gap = r["diffusion"]["nll_bits_per_token"] / r["autoregressive"]["nll_bits_per_token"] - 1
        rows.append(f"| {name} | diffusion/AR - 1 | | | {gap:+.1%} | | |")
    return "\n".join(rows)


def merged(path: Path, new: dict) -> dict:
    """The results already in `path` (if any) with this run's data sets replaced or added."""
    old = json.loads(path.read_text())["results"] if path.is_file() else {}
    return {**old, **new}


def main() -> None:
    a = parse()
    torch.manual_seed(0)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    new = {name: {**run_dataset(name, a), "config": meta} for name in a.datasets.split(",")}
    results = merged(a.out, new)
    print(table(results))
    a.out.write_text(json.dumps({"results": results}, indent=2))
    print(f"wrote {a.out} ({', '.join(results)})")


if __name__ == "__main__":
    main()
