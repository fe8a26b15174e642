"""The NumPy reference against the torch backend, on the CPU, at course sizes.

One training step of the MLP 784-256-256-10 with BatchNorm1d and Dropout(0.1) (ReLU),
batch 128: forward, cross-entropy, backward, Adam step (lr 1e-3), in the same dtype:

- NumPy: ``course_lib.numpy.layers.mlp`` + ``course_lib.numpy.losses.CrossEntropyLoss``
  + ``course_lib.numpy.optim.Adam`` (the hand-written backward);
- baseline: ``course_lib.torch.layers.mlp`` + ``torch.nn.functional.cross_entropy`` +
  ``course_lib.torch.optim.Adam`` on the CPU (autograd), the step of
  ``course_lib.training.train_step`` for both.

Prints steps/s of each and the ratio NumPy / torch (target >= 0.5: NumPy no more than
2x slower). ``--profile`` adds the NumPy step's most expensive functions (cProfile).

    python -m benchmarks.numpy_vs_torch [--quick] [--dtype float32|float64] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._common import print_header, steps_per_second

SIZES = [784, 256, 256, 10]
BATCH = 128
DROPOUT = 0.1


def numpy_runner(dtype, X, Y):
    import course_lib.numpy.layers as nl
    import course_lib.numpy.losses as nlosses
    import course_lib.numpy.optim as noptim
    from course_lib.training import train_step

    rng = np.random.default_rng(0)
    model = nl.mlp(SIZES, batch_norm=True, dropout=DROPOUT, generator=rng, dtype=dtype)
    opt = noptim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nlosses.CrossEntropyLoss()
    model.train()

    def run(n):
        for i in range(n):
            train_step(model, loss_fn, opt, X[i % len(X)], Y[i % len(X)])
    return run


def torch_runner(dtype, X, Y):
    import course_lib.torch.layers as tl
    import course_lib.torch.optim as toptim
    from course_lib.training import train_step

    tdtype = getattr(torch, np.dtype(dtype).name)
    model = tl.mlp(SIZES, batch_norm=True, dropout=DROPOUT, device="cpu", dtype=tdtype,
                   generator=torch.Generator().manual_seed(0))
    opt = toptim.Adam(model.parameters(), lr=1e-3)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    model.train()

    def run(n):
        for i in range(n):
            train_step(model, F.cross_entropy, opt, Xt[i % len(Xt)], Yt[i % len(Xt)])
    return run


def profile_numpy(dtype, X, Y, steps, top=12):
    """Print the functions where the NumPy step spends its time."""
    run = numpy_runner(dtype, X, Y)
    run(2)
    profiler = cProfile.Profile()
    profiler.enable()
    run(steps)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\nprofile of {steps} NumPy steps ({np.dtype(dtype).name}), by own time:")
    print("\n".join(out.getvalue().splitlines()[4:]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.numpy_vs_torch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: a smoke run")
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append",
                        help="default: both")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round")
    parser.add_argument("--profile", action="store_true", help="profile the NumPy step")
    args, _ = parser.parse_known_args(argv)
    dtypes = args.dtype or (["float32"] if args.quick else ["float32", "float64"])
    steps = args.steps or (3 if args.quick else 100)
    warmup, repeats = (1, 1) if args.quick else (10, 5)

    device = torch.device("cpu")
    print_header("training step on the CPU, MLP 784-256-256-10 + BatchNorm1d + Dropout(0.1), "
                 "batch 128, Adam", "course_lib.torch (autograd) on the CPU, same step", device)
    rng = np.random.default_rng(0)
    ratios = {}
    for name in dtypes:
        dtype = np.dtype(name)
        X = rng.standard_normal((8, BATCH, SIZES[0])).astype(dtype)
        Y = rng.integers(0, SIZES[-1], size=(8, BATCH))
        rates = steps_per_second({"numpy": numpy_runner(dtype, X, Y),
                                  "torch": torch_runner(dtype, X, Y)},
                                 steps=steps, warmup=warmup, repeats=repeats, device=device)
        ratios[name] = rates["numpy"] / rates["torch"]
        print(f"[{name}] course_lib.numpy: {rates['numpy']:9.1f} steps/s   "
              f"course_lib.torch (cpu): {rates['torch']:9.1f} steps/s")
        print(f"ratio numpy / torch [{name}]: {ratios[name]:.2f}x (target >= 0.5x)"
              + ("  [--quick: not a measurement]" if args.quick else ""))
        if args.profile:
            profile_numpy(dtype, X, Y, steps)
    return ratios


if __name__ == "__main__":
    main()
