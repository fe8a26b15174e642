"""The instructor's notebooks, ``solutions/*/*.ipynb``, run top to bottom with every test
cell passing (``pytest --nbval-lax``: the cells run, an exception in any fails)."""
import nbformat
import pytest

from nbval_support import ROOT, run_nbval

SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def test_there_are_solutions():
    assert len(SOLUTIONS) >= 5


@pytest.mark.slow
def test_solutions_run_with_every_test_cell_passing():
    result = run_nbval(SOLUTIONS, lax=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    n_cells = sum(len([c for c in nbformat.read(p, 4).cells if c.cell_type == "code"])
                  for p in SOLUTIONS)
    assert f"{n_cells} passed" in result.stdout, result.stdout[-2000:]


def test_nbval_lax_fails_a_notebook_whose_test_cell_fails(tmp_path):
    """The check can fail: a notebook whose test cell asserts something false."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def double(x):\n    return x + x"),
        nbformat.v4.new_code_cell("assert double(2) == 5, 'double(2) should be 5'"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = run_nbval([path], lax=True)
    assert result.returncode != 0
    assert "1 failed, 1 passed" in result.stdout, result.stdout[-3000:]
    assert "double(2) should be 5" in result.stdout
