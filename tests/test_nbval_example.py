"""The worked example ``examples/worked_example.ipynb`` reproduces its stored outputs
(``pytest --nbval``, times and addresses masked by ``examples/nbval_sanitize.cfg``), so a
change that alters a result a student would see is caught."""
import nbformat

from nbval_support import ROOT, SANITIZE, run_nbval

EXAMPLE = ROOT / "examples" / "worked_example.ipynb"


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_example_has_stored_outputs_that_mention_its_results():
    nb = nbformat.read(EXAMPLE, 4)
    cells = _code_cells(nb)
    assert all(c.outputs for c in cells), "every cell's output is stored (run it and save)"
    text = "".join(o.get("text", "") for c in cells for o in c.outputs)
    assert "test accuracy" in text and "training loss" in text
    assert SANITIZE.is_file()


def test_example_reproduces_its_stored_outputs():
    result = run_nbval([EXAMPLE], lax=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"{len(_code_cells(nbformat.read(EXAMPLE, 4)))} passed" in result.stdout


def test_nbval_catches_a_changed_result(tmp_path):
    """The check can fail: the notebook with one stored number changed (the last epoch's
    accuracy) fails in that cell, while a different time in another cell passes."""
    nb = nbformat.read(EXAMPLE, 4)
    cells = _code_cells(nb)
    training = next(i for i, c in enumerate(cells) if "for epoch" in c.source)
    timing = next(i for i, c in enumerate(cells) if "trained in" in c.source)
    stream = cells[training].outputs[0]
    last = stream.text.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("epoch 5:")
    stream.text = stream.text.replace(last, last.replace("test accuracy ", "test accuracy 1"))
    cells[timing].outputs[0].text = "trained in 123.45 s\n"
    path = tmp_path / "changed.ipynb"
    nbformat.write(nb, path)
    result = run_nbval([path], lax=False)
    assert result.returncode != 0
    assert f"1 failed, {len(cells) - 1} passed" in result.stdout, result.stdout[-3000:]
    assert f"FAILED ::Cell {training}" in result.stdout
    assert "mismatch 'stdout'" in result.stdout
