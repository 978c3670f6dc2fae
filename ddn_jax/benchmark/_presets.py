"""What the benchmark runs: the models, the implementations, the sections and the presets."""

from __future__ import annotations

from typing import Any

from ddn_jax import attacks, models

IMPLEMENTATIONS = ('ddn_jax', 'adv_lib', 'foolbox')
MODELS = {
  'small_cnn': (models.SmallCNN, (28, 28, 1)),
  'cifar_cnn': (models.CifarCNN, (32, 32, 3)),
  'wide_resnet': (models.WideResNet, (32, 32, 3)),
}
# The attacks compared side by side: those of the registry with an adv-lib counterpart.
# The minimum-norm attacks with an adv-lib counterpart (the bounded ones need an eps).
ATTACKS = tuple(e.name for e in attacks.ATTACKS.values() if e.adv_lib and e.minimum_norm)
SECTIONS = (
  'gradient',
  'attacks',
  'cw_long',
  'compaction',
  'scaling',
  'sweep',
  'persist',
  'distributed',
)
# The precisions a run can use (`ddn_jax.models.make_logits_fn`; the peak table knows more:
# `ddn_jax.benchmark.PEAKS`). PyTorch's side stays float32.
RUN_PRECISIONS = ('float32', 'bfloat16')

# Sizes per preset. ``batch``: images per attack call per model (the attack table runs only the
# models listed there); ``steps``: K of DDN K, C&W 1×K, DeepFool K, FMN K. ``compaction``: the
# attack specs (`ddn_jax.attacks.parse_attack`) timed with and without their compacting loop.
PRESETS: dict[str, dict[str, Any]] = {
  'tiny': {
    'models': ('small_cnn',),
    'batch': {'small_cnn': 4, 'cifar_cnn': 2, 'wide_resnet': 1},
    'grad_batch': {'small_cnn': 8, 'cifar_cnn': 4, 'wide_resnet': 1},
    'steps': 2,
    'warmup': 1,
    'repeats': 1,
    'train_steps': 0,
    'cw_long': {'images': 1, 'binary_search_steps': 2, 'steps': 10, 'foolbox': True},
    'compaction': {
      'batches': (16,),
      'attacks': ('deepfool:steps=20', 'cw:steps=20,abort_early=example'),
    },
    'scaling_batches': (2,),
    'scaling_steps': (3,),
    'scaling_steps_batch': 1,
    'scaling_attack_steps': 2,
    'sweep': {'points': 2, 'batch': 2, 'steps': 2},
    'persist': {'images': 4, 'batch': 2, 'steps': 2, 'rounds': 1},
    'distributed': {
      'devices': (1,),
      'processes': (2,),
      'images': 4,
      'steps': 2,
      'sweep_points': 2,
      'sweep_steps': 2,
      'repeats': 1,
      'rounds': 1,
    },
  },
  # Sized for a 2-core CPU (about 20 minutes when the machine is not shared).
  'cpu': {
    'models': ('small_cnn', 'cifar_cnn', 'wide_resnet'),
    'batch': {'small_cnn': 16, 'cifar_cnn': 8, 'wide_resnet': 1},
    'grad_batch': {'small_cnn': 256, 'cifar_cnn': 32, 'wide_resnet': 2},
    # WideResNet-28-10: gradient only (one DDN-100 on one image is ~100 s here).
    'attacks': {'cifar_cnn': ('ddn', 'cw'), 'wide_resnet': ()},
    'steps': 100,
    'warmup': 1,
    'repeats': 2,
    'train_steps': 200,
    # foolbox runs C&W eagerly, op by op: 9x10000 does not fit the CPU preset's time.
    'cw_long': {'images': 2, 'binary_search_steps': 9, 'steps': 10000, 'foolbox': False},
    'compaction': {'batches': (16, 64), 'attacks': ('deepfool', 'cw:abort_early=example')},
    'scaling_batches': (1, 64, 1024, 4096),
    'scaling_steps': (10, 100, 1000),
    'scaling_steps_batch': 4,
    'scaling_attack_steps': 2,
    'sweep': {'points': 8, 'batch': 16, 'steps': 20},
    # The CPU benchmark's evaluation: DDN-100 on the small CNN, a file per batch of 16.
    'persist': {'images': 128, 'batch': 16, 'steps': 100, 'rounds': 5},
    # Forced CPU devices and processes share the machine's cores: efficiency falls past them.
    'distributed': {
      'devices': (1, 2, 4, 8),
      'processes': (1, 2, 4),
      'images': 64,
      'steps': 100,
      'sweep_points': 8,
      'sweep_steps': 20,
      'repeats': 2,
      'rounds': 2,
    },
  },
  'gpu': {
    'models': ('small_cnn', 'cifar_cnn', 'wide_resnet'),
    'batch': {'small_cnn': 1000, 'cifar_cnn': 1000, 'wide_resnet': 256},
    'grad_batch': {'small_cnn': 1000, 'cifar_cnn': 1000, 'wide_resnet': 256},
    'steps': 100,
    'warmup': 1,
    'repeats': 3,
    'train_steps': 1000,
    'cw_long': {'images': 1000, 'binary_search_steps': 9, 'steps': 10000, 'foolbox': False},
    'compaction': {
      'batches': (1000,),
      'attacks': (
        'deepfool',
        'cw:abort_early=example',
        (
          'cw:binary_search_steps=9,steps=1000,learning_rate=0.01,initial_const=0.001,'
          'abort_early=example'
        ),
      ),
    },
    'scaling_batches': (1, 16, 256, 1024, 4096, 16384),
    'scaling_steps': (10, 100, 1000, 10000),
    'scaling_steps_batch': 256,
    'scaling_attack_steps': 20,
    'sweep': {'points': 8, 'batch': 1000, 'steps': 100},
    'persist': {'images': 8000, 'batch': 1000, 'steps': 100, 'rounds': 3},
    # One process over the machine's accelerators (the devices counts are CPU devices only).
    'distributed': {
      'devices': (1,),
      'processes': (1,),
      'images': 1024,
      'steps': 100,
      'sweep_points': 8,
      'sweep_steps': 100,
      'repeats': 3,
      'rounds': 1,
    },
  },
}


def benchmark_attack(name: str, steps: int) -> attacks.Attack:
  """The attack the three implementations run side by side: the registry's adv-lib settings
  (ours then runs adv-lib's algorithm step for step) with ``steps`` iterations."""
  entry = attacks.get_attack(name)
  return attacks.make_attack(name, **{**entry.adv_lib_settings, 'steps': steps})


def cw_long_attack(cfg: dict[str, Any]) -> attacks.Attack:
  """C&W with Carlini's long budget and constants, under adv-lib's per-batch abort rule."""
  return attacks.make_attack(
    'cw',
    binary_search_steps=cfg['binary_search_steps'],
    steps=cfg['steps'],
    learning_rate=0.01,
    initial_const=1e-3,
    confidence=0.0,
    abort_early='batch',
  )
