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
