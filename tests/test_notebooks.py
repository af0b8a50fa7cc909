"""Execute every notebook of notebooks/ top to bottom at the TINY setting."""
import os

import pytest

from conftest import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")
# train_shapes first: the inspect notebooks load its checkpoint when present.
ORDER = ["train_shapes", "demo", "inspect_data", "inspect_model", "inspect_weights",
         "background_removal"]


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("notebook_logs"))


def test_notebooks_are_committed_without_outputs():
    for name in ORDER:
        nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name + ".ipynb"), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        assert "TINY" in nb.cells[1].source  # the parameter cell


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_notebook_runs(name, logs_dir, monkeypatch):
    monkeypatch.setenv("MRCNN_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("MRCNN_NOTEBOOK_LOGS", logs_dir)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name + ".ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOK_DIR}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors


def test_demo_notebook_without_its_data_stops_saying_where_to_get_it(
        tmp_path, monkeypatch):
    """No demo photos: the notebook stops at the cell that needs them, with
    the path and docs/DATA.md, instead of running on random noise."""
    monkeypatch.setenv("MRCNN_SHARED_DATA", str(tmp_path / "no_data"))
    monkeypatch.setenv("MRCNN_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("MRCNN_NOTEBOOK_LOGS", str(tmp_path / "logs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = nbformat.read(os.path.join(NOTEBOOK_DIR, "demo.ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOK_DIR}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as error:
        client.execute()
    message = str(error.value)
    assert "the demo photos" in message and "docs/DATA.md" in message
    assert str(tmp_path / "no_data" / "images") in message
    assert not any(c.outputs for c in nb.cells
                   if c.cell_type == "code" and "model.detect(" in c.source)
