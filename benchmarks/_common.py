"""Shared by the benchmarks: the header line and an interleaved throughput timer."""
from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return (f"cpu ({platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads)")


def print_header(title: str, baseline: str, device: torch.device) -> None:
    print(title)
    print(f"baseline: {baseline}")
    print(f"device: {describe_device(device)}")
    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(runners: dict, *, steps: int, warmup: int, repeats: int,
                     device: torch.device) -> dict:
    """Throughput of each ``runner(n_steps)`` in steps per second.

    The runners are timed in turns (``repeats`` rounds of ``steps`` steps each, after
    ``warmup`` steps each), so drifts of the machine (clocks, other processes) hit all of
    them alike; the median round counts. The device is synchronized only around each
    timed round.
    """
    for run in runners.values():
        run(warmup)
    _sync(device)
    rounds = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            _sync(device)
            start = time.perf_counter()
            run(steps)
            _sync(device)
            rounds[name].append(steps / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rounds.items()}
