"""One optimizer step: course_lib.torch.optim.Adam against torch.optim.Adam.

All candidates update the parameters of the same MLP (float32, gradients set once):

- baseline: ``torch.optim.Adam`` with its default implementation for the device
  (multi-tensor ``foreach`` kernels on CUDA, the per-tensor loop on CPU);
- ``torch.optim.Adam(foreach=False)``: the per-tensor loop, the structure
  course_lib's optimizers have (one update rule applied to each parameter in turn);
- ``course_lib.torch.optim.Adam``, default (``foreach`` on CUDA, like torch) and
  ``foreach=False``.

Prints steps/s of each and the ratios course_lib / torch.

    python -m benchmarks.optim_step [--quick] [--device cpu|cuda] [--sizes 784 512 512 10]
"""
from __future__ import annotations

import argparse

import torch

from benchmarks._common import print_header, steps_per_second


def mlp_parameters(sizes, device, generator):
    """Weights ``(out, in)`` and biases of an MLP, each with a random ``.grad``."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        for shape in ((fan_out, fan_in), (fan_out,)):
            p = torch.nn.Parameter(0.01 * torch.randn(shape, generator=generator).to(device))
            p.grad = torch.randn(shape, generator=generator).to(device)
            params.append(p)
    return params


def step_runner(optimizer):
    def run(n):
        for _ in range(n):
            optimizer.step()
    return run


def main(argv=None):
    from course_lib.torch.optim import Adam as CourseAdam

    parser = argparse.ArgumentParser(prog="python -m benchmarks.optim_step",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: a smoke run")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 512, 10])
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round")
    args, _ = parser.parse_known_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    steps = args.steps or (2 if args.quick else 50)
    warmup, repeats = (1, 1) if args.quick else (10, 5)

    params = mlp_parameters(args.sizes, device, torch.Generator().manual_seed(0))
    n = sum(p.numel() for p in params)
    print_header(f"Adam step on the parameters of an MLP {args.sizes} "
                 f"({len(params)} tensors, {n:,} numbers, float32)",
                 "torch.optim.Adam, default implementation for the device", device)
    # all three step the same tensors: timing only, the values do not matter
    optimizers = {
        "torch": torch.optim.Adam(params, lr=1e-3),
        "torch, foreach=False": torch.optim.Adam(params, lr=1e-3, foreach=False),
        "course_lib": CourseAdam(params, lr=1e-3),
        "course_lib, foreach=False": CourseAdam(params, lr=1e-3, foreach=False),
    }
    rates = steps_per_second({name: step_runner(opt) for name, opt in optimizers.items()},
                             steps=steps, warmup=warmup, repeats=repeats, device=device)
    for name, rate in rates.items():
        print(f"  {name:26s} {rate:10.1f} steps/s  ({1e3 / rate:.3f} ms/step)")
    ratio = rates["course_lib"] / rates["torch"]
    note = "  [--quick: not a measurement]" if args.quick else ""
    print(f"ratio course_lib / torch (baseline): {ratio:.2f}x{note}")
    print(f"ratio course_lib foreach=False / torch foreach=False: "
          f"{rates['course_lib, foreach=False'] / rates['torch, foreach=False']:.2f}x{note}")
    return ratio


if __name__ == "__main__":
    main()
