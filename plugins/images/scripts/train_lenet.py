"""Train the LeNet classifiers that the FD_lenet metrics use, and record their checksums.

    OMP_NUM_THREADS=1 python plugins/images/scripts/train_lenet.py    # both, ~3 min on a CPU

Writes `flowforge_images/weights/{lenet_mnist5k,lenet_digits}.{pt,json}`: the state dict
(float32) and a record with its sha256, the training data and split, and the accuracy on the
held-out test split (never seen in training; the same splits as the mnist5k/digits datasets).
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from flowforge_images.data import Digits, MNIST5k
from flowforge_images.metrics.lenet import LeNet, sha256, weights_dir


def shift(x: torch.Tensor, gen: torch.Generator, pixels: int) -> torch.Tensor:
    """Random translations by up to `pixels` (zero fill): the only augmentation."""
    dx, dy = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=gen))
    return torch.roll(F.pad(x, (pixels,) * 4), (dy, dx), (2, 3))[
        ..., pixels:-pixels, pixels:-pixels
    ]


def train(name: str, dataset, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    splits, labels = dataset.splits(), dataset.labels()
    x, y = splits["train"], labels["train"]
    net = LeNet(image_size=x.shape[-1])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=gen).split(64):
            xb = shift(x[idx], gen, 2 if x.shape[-1] == 28 else 1)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if (epoch + 1) % 10 == 0:
            print(f"{name}: epoch {epoch + 1}/{epochs}, loss {loss.item():.4f}", flush=True)
    net.eval()
    with torch.no_grad():
        acc = float((net(splits["test"]).argmax(1) == labels["test"]).float().mean())
        train_acc = float((net(x).argmax(1) == y).float().mean())
    file = weights_dir() / f"{name}.pt"
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, file)
    record = {
        "sha256": sha256(file),
        "data": type(dataset).__name__,
        "splits": dataset.record(),
        "epochs": epochs,
        "seed": seed,
        "test_accuracy": round(acc, 4),
        "train_accuracy": round(train_acc, 4),
        "script": "plugins/images/scripts/train_lenet.py",
    }
    (weights_dir() / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-epochs", type=int, default=20)
    parser.add_argument("--digits-epochs", type=int, default=150)
    parser.add_argument("--only", choices=["mnist5k", "digits"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    jobs = (
        ("mnist5k", "lenet_mnist5k", MNIST5k(), args.mnist_epochs),
        ("digits", "lenet_digits", Digits(), args.digits_epochs),
    )
    for key, name, data, epochs in jobs:
        if args.only not in (None, key):
            continue
        rec = train(name, data, epochs, args.seed)
        print(f"{name}: test accuracy {rec['test_accuracy']:.4f}, sha256 {rec['sha256']}")


if __name__ == "__main__":
    main()
