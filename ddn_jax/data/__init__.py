"""Datasets as in-memory NumPy arrays, and seeded resumable batches."""

from ddn_jax.data._fingerprint import fingerprint
from ddn_jax.data._iterator import batches, epoch_permutation, steps_per_epoch
from ddn_jax.data._load import load
from ddn_jax.data._offline import FASHION_MNIST_DIR_ENV, MNIST_DIR_ENV
from ddn_jax.data._preprocess import resize_and_center_crop, to_float_images
from ddn_jax.data._registry import SPLITS
from ddn_jax.data._split import split_indices

__all__ = (
  'FASHION_MNIST_DIR_ENV',
  'MNIST_DIR_ENV',
  'SPLITS',
  'batches',
  'epoch_permutation',
  'fingerprint',
  'load',
  'resize_and_center_crop',
  'split_indices',
  'steps_per_epoch',
  'to_float_images',
)
