"""Shared pytest set-up: headless plotting, quiet progress bars, CUDA tests skip cleanly."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def torch_one_thread():
    """The chapters run their tiny networks on one thread; so do the claims tests (faster,
    and the same floating-point reductions). Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Property-based tests: reproducible (the same examples on every run and machine: a fixed
# seed per test and no example database replaying earlier failures), no
# per-example deadline (two shared cores), modest example counts. A test's own
# @settings(max_examples=...) overrides the count only.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "course", derandomize=True, database=None, deadline=None, max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A maintainer's deeper search, not run by `make test`: fresh random examples on every run,
# eight times as many (HYPOTHESIS_PROFILE=explore pytest ...).
settings.register_profile(
    "explore", parent=settings.get_profile("course"), derandomize=False, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))
