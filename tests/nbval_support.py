"""Run nbval (pytest's notebook plugin) on notebooks in a child pytest.

nbval's modes are global flags of a pytest run (``--nbval``: compare every stored output;
``--nbval-lax``: only run the cells, failing on an error), and the course uses both, so
each check runs its own ``python -m pytest`` in the repository root, with the kernel of
this environment (``--nbval-current-env``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "examples" / "nbval_sanitize.cfg"


def run_nbval(paths, *, lax, timeout=900):
    """``pytest --nbval[-lax] paths``; returns the completed process (stdout has the
    report)."""
    mode = "--nbval-lax" if lax else "--nbval"
    args = [sys.executable, "-m", "pytest", mode, "--nbval-current-env",
            "--nbval-cell-timeout=600", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(ROOT)]
    if not lax:
        args += ["--nbval-sanitize-with", str(SANITIZE)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(args + [str(p) for p in paths], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
