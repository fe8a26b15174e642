"""Every benchmark runs in --quick mode and prints its header and a ratio line.

No timing is asserted: this only checks that the benchmarks still run against the
current library. The modules are found as ``python -m benchmarks`` finds them.
"""
import importlib
import re

import pytest

from benchmarks.__main__ import discover

NAMES = discover()


def test_the_library_benchmarks_are_found():
    assert {"train_step", "numpy_vs_torch"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_quick_run_prints_a_ratio(name, capsys):
    importlib.import_module(f"benchmarks.{name}").main(["--quick"])
    out = capsys.readouterr().out
    assert re.search(r"(?i)\bbaseline\b", out), out
    assert re.search(r"(?im)^.*\bratio\b.*\d", out), out
