"""Training-step throughput: course_lib's torch path against an idiomatic PyTorch loop.

Both train the course's MLP 784-256-256-10 (ReLU) on batches of 128 with Adam (lr 1e-3)
and cross-entropy, on the same device (CUDA when available), in the same process:

- course_lib: ``course_lib.torch.layers.mlp`` + ``course_lib.torch.optim.Adam``, one
  step = ``course_lib.training.train_step`` (the step ``fit`` runs);
- baseline: ``torch.nn.Linear``/``torch.nn.ReLU`` in ``torch.nn.Sequential`` +
  ``torch.optim.Adam`` (its default implementation for the device), the loop
  ``zero_grad(); cross_entropy(model(x), y).backward(); step()``.

Prints steps/s of each and the ratio course_lib / baseline (target >= 0.9).

    python -m benchmarks.train_step [--quick] [--device cpu|cuda] [--steps N] [--breakdown]

``--breakdown`` also times the variants with one part (model, optimizer, step code)
swapped, to show which part costs the difference.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks._common import print_header, steps_per_second

SIZES = [784, 256, 256, 10]
BATCH = 128


def make_batches(n_batches, device, generator):
    X = torch.randn(n_batches, BATCH, SIZES[0], generator=generator).to(device)
    Y = torch.randint(0, SIZES[-1], (n_batches, BATCH), generator=generator).to(device)
    return X, Y


def course_model(device):
    from course_lib.torch.layers import mlp

    return mlp(SIZES, activation="relu", generator=torch.Generator().manual_seed(0)).to(device)


def torch_model(device):
    torch.manual_seed(0)
    layers = []
    for d_in, d_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [torch.nn.Linear(d_in, d_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(SIZES[-2], SIZES[-1])).to(device)


def course_adam(params):
    from course_lib.torch.optim import Adam

    return Adam(params, lr=1e-3)


def torch_adam(params):
    return torch.optim.Adam(params, lr=1e-3)


def step_runner(model, make_optimizer, X, Y):
    """Steps with ``course_lib.training.train_step``."""
    from course_lib.training import train_step

    opt = make_optimizer(model.parameters())
    model.train()

    def run(n):
        for i in range(n):
            train_step(model, F.cross_entropy, opt, X[i % len(X)], Y[i % len(X)])
    return run


def inline_runner(model, make_optimizer, X, Y):
    """The idiomatic loop, written out."""
    opt = make_optimizer(model.parameters())
    model.train()

    def run(n):
        for i in range(n):
            opt.zero_grad()
            loss = F.cross_entropy(model(X[i % len(X)]), Y[i % len(X)])
            loss.backward()
            opt.step()
    return run


def breakdown(device, X, Y, steps, warmup, repeats):
    """Swap one part at a time, to see which part costs the difference."""
    T, C = torch_model, course_model
    variants = {
        "torch.nn + torch Adam, inline loop (baseline)": inline_runner(T(device), torch_adam, X, Y),
        "torch.nn + torch Adam, training.train_step": step_runner(T(device), torch_adam, X, Y),
        "course mlp + torch Adam, training.train_step": step_runner(C(device), torch_adam, X, Y),
        "torch.nn + course Adam, training.train_step": step_runner(T(device), course_adam, X, Y),
        "course mlp + course Adam, training.train_step": step_runner(C(device), course_adam, X, Y),
    }
    rates = steps_per_second(variants, steps=steps, warmup=warmup, repeats=repeats, device=device)
    base = rates["torch.nn + torch Adam, inline loop (baseline)"]
    print("\nbreakdown (one part swapped at a time):")
    for name, rate in rates.items():
        print(f"  {name:48s} {rate:10.1f} steps/s  {rate / base:5.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: a smoke run")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the variants with one part swapped")
    args, _ = parser.parse_known_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    steps = args.steps or (3 if args.quick else 200)
    warmup, repeats = (1, 1) if args.quick else (50, 7)

    print_header("training step, MLP 784-256-256-10 (ReLU), batch 128, Adam, cross-entropy",
                 "torch.nn.Sequential + torch.optim.Adam, idiomatic loop", device)
    X, Y = make_batches(8, device, torch.Generator().manual_seed(0))
    rates = steps_per_second({"course_lib": step_runner(course_model(device), course_adam, X, Y),
                              "torch": inline_runner(torch_model(device), torch_adam, X, Y)},
                             steps=steps, warmup=warmup, repeats=repeats, device=device)
    print(f"course_lib (mlp + course_lib Adam + train_step): {rates['course_lib']:10.1f} steps/s")
    print(f"torch.nn + torch.optim.Adam:                     {rates['torch']:10.1f} steps/s")
    ratio = rates["course_lib"] / rates["torch"]
    print(f"ratio course_lib / torch: {ratio:.2f}x (target >= 0.9x)"
          + ("  [--quick: not a measurement]" if args.quick else ""))
    if args.breakdown:
        breakdown(device, X, Y, steps, warmup, repeats)
    return ratio


if __name__ == "__main__":
    main()
