"""examples/quickstart.ipynb: stored clean, and run top to bottom in a Jupyter kernel of this Python."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch) -> str:
    """The name of a ``python3`` kernelspec that starts this interpreter (``sys.executable``), found
    before any other (a user's own ``python3`` spec may start another Python), with inline figures."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(spec.parents[1]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return "python3"


def outputs_of(notebook) -> tuple[str, list[str]]:
    """The text the executed notebook's code cells printed or displayed, and their MIME types."""
    texts, kinds = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            # A print may reach the client as several stream messages (under load): glue them as written.
            texts.append(output["text"] if output.get("output_type") == "stream"
                         else output.get("data", {}).get("text/plain", "") + "\n")
            kinds.extend(output.get("data", {}))
    return "".join(texts), kinds


def test_quickstart_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart_runs_in_a_kernel_of_this_python_and_shows_results(tmp_path, python3_kernel):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel python:', sys.executable)"))
    work = tmp_path / "work"
    work.mkdir()
    NotebookClient(notebook, timeout=300, kernel_name=python3_kernel,
                   resources={"metadata": {"path": str(work)}}).execute()  # a failing cell raises
    text, kinds = outputs_of(notebook)
    assert f"kernel python: {sys.executable}" in text
    means = {name: float(value) for name, value in re.findall(r"(fused|tuned).*mean Dice (\d\.\d{4})", text)}
    assert set(means) == {"fused", "tuned"} and all(0 <= mean <= 1 for mean in means.values())
    assert "tuned: 58 rows" in text  # 2 test images x 29 classes
    assert "image_name" in text and "held-out" in text and "choice" in text  # score and tune tables
    assert "text/html" in kinds and "image/png" in kinds  # the tables and the picture
