"""Flax variables of the `ddn_jax.models` networks <-> PyTorch ``state_dict``s.

Flax convolutions are NHWC with HWIO kernels and dense kernels are ``(in, out)``; PyTorch is NCHW
with OIHW kernels and ``(out, in)`` weights. The first dense layer of `SmallCNN`/`CifarCNN` also
sees the feature map flattened in a different order (Flax H, W, C; PyTorch C, H, W), so its rows
are permuted. Batch norm maps ``scale``/``bias``/``mean``/``var`` to
``weight``/``bias``/``running_mean``/``running_var``; PyTorch's ``num_batches_tracked`` has no
Flax counterpart (it is written as 0 and ignored on the way back). `InceptionV3`'s Flax modules
carry torchvision's names, so its keys are the Flax paths joined by dots; torchvision's
training-time ``AuxLogits`` head has no Flax counterpart (its keys are checked, then dropped).
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax import models

if TYPE_CHECKING:
  import torch

ModelLike = nn.Module | str

_NAMES = {
  'small_cnn': models.SmallCNN,
  'cifar_cnn': models.CifarCNN,
  'wide_resnet': models.WideResNet,
  'preact_resnet18': models.PreActResNet18,
  'dm_wide_resnet': models.DMWideResNet,
  'dm_preact_resnet': models.DMPreActResNet,
  'resnet': models.ResNet,
  'inception_v3': models.InceptionV3,
}
_DEFAULT_INPUT_SHAPE = {
  models.SmallCNN: (28, 28, 1),
  models.CifarCNN: (32, 32, 3),
  models.WideResNet: (32, 32, 3),
  models.PreActResNet18: (32, 32, 3),
  models.DMWideResNet: (32, 32, 3),
  models.DMPreActResNet: (32, 32, 3),
  models.ResNet: (32, 32, 3),
  models.InceptionV3: (299, 299, 3),
}
_CONV_WIDTHS = {models.SmallCNN: ((32, 64), 200), models.CifarCNN: ((64, 128), 256)}

# One leaf: (Flax collection, Flax path, torch key, Flax->torch array map, torch->Flax map).
_Leaf = tuple[str, tuple[str, ...], str, Callable[[np.ndarray], np.ndarray], Callable]


def flax_model(model: ModelLike, **kwargs: Any) -> nn.Module:
  """The Flax module for ``model``: a module is returned as is, a name is built with ``kwargs``."""
  if isinstance(model, str):
    if model not in _NAMES:
      raise ValueError(f'Unknown model {model!r}; expected one of {sorted(_NAMES)}.')
    return _NAMES[model](**kwargs)
  if kwargs:
    raise TypeError('Keyword arguments configure a model given by name, not a module.')
  if type(model) not in _DEFAULT_INPUT_SHAPE:
    raise TypeError(
      f'No PyTorch twin for {type(model).__name__}; expected SmallCNN, CifarCNN, WideResNet, '
      'PreActResNet18, DMWideResNet, DMPreActResNet, ResNet or InceptionV3.'
    )
  return model


def _input_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
  shape = tuple(input_shape) if input_shape is not None else _DEFAULT_INPUT_SHAPE[type(model)]
  if len(shape) != 3:
    raise ValueError(f'input_shape must be (H, W, C), got {shape}.')
  if isinstance(model, models.InceptionV3) and shape[-1] != 3:
    raise ValueError(f'InceptionV3 takes RGB images (H, W, 3), got input_shape {shape}.')
  return shape


def torch_model(
  model: ModelLike, *, input_shape: Sequence[int] | None = None, **kwargs: Any
) -> torch.nn.Module:
  """A freshly initialised PyTorch module with the architecture of a `ddn_jax.models` network.

  Args:
    model: a `SmallCNN`, `CifarCNN`, `WideResNet`, `PreActResNet18`, `DMWideResNet`,
      `DMPreActResNet`, `ResNet` or `InceptionV3` instance, or its name ``'small_cnn'``,
      ``'cifar_cnn'``, ``'wide_resnet'``, ``'preact_resnet18'``, ``'dm_wide_resnet'``,
      ``'dm_preact_resnet'``, ``'resnet'`` or ``'inception_v3'``.
    input_shape: ``(H, W, C)`` of one image; defaults to ``(28, 28, 1)`` for `SmallCNN`,
      ``(299, 299, 3)`` for `InceptionV3` and ``(32, 32, 3)`` otherwise. It sets the input
      channels (and, for the plain CNNs, the width of the first dense layer).
    **kwargs: the Flax module's attributes when ``model`` is a name, e.g. ``depth=16``.

  Returns:
    A ``torch.nn.Module`` taking float NCHW images in [0, 1] and returning logits; the same
    network as the Flax module once given its weights with `to_torch_state_dict`.
  """
  from ddn_jax.interop import _torch_models

  model = flax_model(model, **kwargs)
  h, w, c = _input_shape(model, input_shape)
  if isinstance(model, models.InceptionV3):
    return _torch_models.Inception3(
      num_classes=model.num_classes,
      transform_input=model.transform_input,
      dropout_rate=model.dropout_rate,
      mean=model.mean,
      std=model.std,
    )
  if isinstance(model, models.WideResNet):
    if (model.depth - 4) % 6:
      raise ValueError(f'WideResNet depth must be 6n + 4, got {model.depth}.')
    return _torch_models.WideResNet(
      model.depth,
      model.width,
      num_channels=c,
      num_classes=model.num_classes,
      dropout_rate=model.dropout_rate,
      mean=model.mean,
      std=model.std,
    )
  if isinstance(model, models.DMWideResNet):
    if (model.depth - 4) % 6:
      raise ValueError(f'DMWideResNet depth must be 6n + 4, got {model.depth}.')
    return _torch_models.DMWideResNet(
      model.depth,
      model.width,
      num_channels=c,
      num_classes=model.num_classes,
      mean=model.mean,
      std=model.std,
    )
  if isinstance(model, models.DMPreActResNet):
    return _torch_models.DMPreActResNet(
      model.blocks_per_stage,
      num_channels=c,
      num_classes=model.num_classes,
      mean=model.mean,
      std=model.std,
    )
  if isinstance(model, models.ResNet):
    return _torch_models.ResNet(
      *model.layout,
      num_channels=c,
      num_classes=model.num_classes,
      mean=model.mean,
      std=model.std,
    )
  if isinstance(model, models.PreActResNet18):
    return _torch_models.PreActResNet18(
      num_channels=c,
      num_classes=model.num_classes,
      mean=model.mean,
      std=model.std,
      activated_shortcut=model.activated_shortcut,
      final_norm=model.final_norm,
    )
  conv_widths, dense_width = _CONV_WIDTHS[type(model)]
  return _torch_models.ConvNet(
    conv_widths,
    dense_width,
    num_channels=c,
    input_size=(h, w),
    num_classes=model.num_classes,
    dropout_rate=model.dropout_rate,
  )


def _conv_to_torch(k):
  return k.transpose(3, 2, 0, 1)


def _conv_from_torch(w):
  return w.transpose(2, 3, 1, 0)


def _identity(a):
  return a


def _flat_dense_to_torch(k, *, hw):
  (h, w), out = hw, k.shape[1]
  return k.reshape(h, w, -1, out).transpose(3, 2, 0, 1).reshape(out, -1)


def _flat_dense_from_torch(weight, *, hw):
  (h, w), out = hw, weight.shape[0]
  return weight.reshape(out, -1, h, w).transpose(2, 3, 1, 0).reshape(-1, out)


def _layer_leaves(kind: str, flax_path: tuple[str, ...], prefix: str, shapes, hw=None) -> list:
  """Leaves of one layer; biases only where the Flax layer has one."""
  params = functools.reduce(lambda tree, key: tree[key], flax_path, shapes['params'])
  if kind == 'bn':
    return [
      ('params', flax_path + ('scale',), f'{prefix}.weight', _identity, _identity),
      ('params', flax_path + ('bias',), f'{prefix}.bias', _identity, _identity),
      ('batch_stats', flax_path + ('mean',), f'{prefix}.running_mean', _identity, _identity),
      ('batch_stats', flax_path + ('var',), f'{prefix}.running_var', _identity, _identity),
    ]
  if kind == 'conv':
    to_torch, from_torch = _conv_to_torch, _conv_from_torch
  elif kind == 'dense':
    to_torch = from_torch = np.transpose
  else:  # The dense layer after the flatten.
    to_torch = functools.partial(_flat_dense_to_torch, hw=hw)
    from_torch = functools.partial(_flat_dense_from_torch, hw=hw)
  leaves = [('params', flax_path + ('kernel',), f'{prefix}.weight', to_torch, from_torch)]
  if 'bias' in params:
    leaves.append(('params', flax_path + ('bias',), f'{prefix}.bias', _identity, _identity))
  return leaves


def _leaves(model: nn.Module, shapes) -> list[_Leaf]:
  """Every Flax leaf of ``model`` with its PyTorch key and array maps."""
  layers = []
  if isinstance(model, models.InceptionV3):
    kinds = {'conv': 'conv', 'bn': 'bn', 'fc': 'dense'}
    modules = dict.fromkeys(path[:-1] for path in _flat(shapes['params']))
    layers = [(kinds[path[-1]], path, '.'.join(path)) for path in modules]
    return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes)]
  if isinstance(model, models.WideResNet):
    n = (model.depth - 4) // 6
    layers.append(('conv', ('Conv_0',), 'conv1'))
    for k in range(3 * n):
      block, prefix = f'_Block_{k}', f'block{k // n + 1}.layer.{k % n}'
      layers += [
        ('bn', (block, 'BatchNorm_0'), f'{prefix}.bn1'),
        ('conv', (block, 'Conv_0'), f'{prefix}.conv1'),
        ('bn', (block, 'BatchNorm_1'), f'{prefix}.bn2'),
        ('conv', (block, 'Conv_1'), f'{prefix}.conv2'),
      ]
      if 'Conv_2' in shapes['params'][block]:
        layers.append(('conv', (block, 'Conv_2'), f'{prefix}.convShortcut'))
    layers += [('bn', ('BatchNorm_0',), 'bn1'), ('dense', ('Dense_0',), 'fc')]
    return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes)]
  if isinstance(model, (models.DMWideResNet, models.DMPreActResNet)):
    # Flax 'layer_1_0' is block 0 of group 1: PyTorch's 'layer.1.block.0' in DMWideResNet (its
    # groups are a Sequential of _BlockGroups), 'layer_1.0' in DMPreActResNet.
    wide = isinstance(model, models.DMWideResNet)
    for name, params in shapes['params'].items():
      if not name.startswith('layer_'):
        layers.append(({'batchnorm': 'bn', 'logits': 'dense'}.get(name, 'conv'), (name,), name))
        continue
      _, group, block = name.split('_')
      prefix = f'layer.{group}.block.{block}' if wide else f'layer_{group}.{block}'
      for child in params:
        kind = 'bn' if child.startswith('batchnorm') else 'conv'
        layers.append((kind, (name, child), f'{prefix}.{child}'))
    return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes)]
  if isinstance(model, models.ResNet):
    # Flax 'layer2_0' is PyTorch's 'layer2.0', 'shortcut_1' (its BN) 'shortcut.1'.
    for name, params in shapes['params'].items():
      if not name.startswith('layer'):
        layers.append(({'bn1': 'bn', 'linear': 'dense'}.get(name, 'conv'), (name,), name))
        continue
      for child in params:
        kind = 'bn' if child.startswith('bn') or child == 'shortcut_1' else 'conv'
        layers.append((kind, (name, child), f'{name.replace("_", ".")}.{child.replace("_", ".")}'))
    return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes)]
  if isinstance(model, models.PreActResNet18):
    # Flax 'layer2_0' is PyTorch's 'layer2.0'; the shortcut conv is the first of a Sequential.
    for name, params in shapes['params'].items():
      if not name.startswith('layer'):
        kind = {'conv1': 'conv', 'bn': 'bn', 'linear': 'dense'}[name]
        layers.append((kind, (name,), name))
        continue
      prefix = name.replace('_', '.')
      for child in params:
        kind = 'bn' if child.startswith('bn') else 'conv'
        key = 'shortcut.0' if child == 'shortcut' else child
        layers.append((kind, (name, child), f'{prefix}.{key}'))
    return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes)]
  from ddn_jax.interop._torch_models import flat_spatial

  h, w, _ = shapes['input_shape']
  layers = [('conv', (f'Conv_{i}',), f'feature_extractor.conv{i + 1}') for i in range(4)]
  layers += [
    ('flat_dense', ('Dense_0',), 'classifier.fc1'),
    ('dense', ('Dense_1',), 'classifier.fc2'),
    ('dense', ('Dense_2',), 'classifier.fc3'),
  ]
  hw = flat_spatial(h, w)
  return [leaf for layer in layers for leaf in _layer_leaves(*layer, shapes, hw=hw)]


def _flax_shapes(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, Any]:
  init = functools.partial(model.init, train=False)
  abstract = jax.eval_shape(init, jax.random.key(0), jnp.zeros((1, *input_shape), jnp.float32))
  shapes = jax.tree.map(lambda a: tuple(a.shape), dict(abstract))
  return {
    'params': shapes['params'],
    'batch_stats': shapes.get('batch_stats', {}),
    'input_shape': input_shape,
  }


def _torch_shapes(model: nn.Module, input_shape, *, aux_logits: bool = False) -> dict[str, tuple]:
  """``{key: shape}`` of `torch_model`'s ``state_dict`` in its order, built on the meta device.

  With ``aux_logits``, `InceptionV3` also lists torchvision's ``AuxLogits`` head.
  """
  import torch

  from ddn_jax.interop import _torch_models

  with torch.device('meta'):  # Shapes only: no memory, no initialisation.
    shapes = {
      k: tuple(v.shape) for k, v in torch_model(model, input_shape=input_shape).state_dict().items()
    }
    if aux_logits and isinstance(model, models.InceptionV3):
      aux = _torch_models.InceptionAux(768, model.num_classes).state_dict()
      shapes.update({f'AuxLogits.{k}': tuple(v.shape) for k, v in aux.items()})
  return shapes


def _flat(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      out.update(_flat(value, prefix + (key,)))
    else:
      out[prefix + (key,)] = value
  return out


def _check(expected: Mapping[Any, tuple], got: Mapping[Any, tuple], what: str) -> None:
  """Raises a ValueError naming every missing, unexpected and mis-shaped entry."""
  fmt = lambda k: '/'.join(k) if isinstance(k, tuple) else k
  problems = [f'missing {fmt(k)} {expected[k]}' for k in expected if k not in got]
  problems += [f'unexpected {fmt(k)} {got[k]}' for k in got if k not in expected]
  problems += [
    f'{fmt(k)} has shape {got[k]}, expected {expected[k]}'
    for k in expected
    if k in got and tuple(got[k]) != tuple(expected[k])
  ]
  if problems:
    raise ValueError(f'{what} does not match the architecture: ' + '; '.join(problems) + '.')


def to_torch_state_dict(
  model: ModelLike, variables: Mapping[str, Any], *, input_shape: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
  """Converts Flax ``variables`` of ``model`` to a PyTorch ``state_dict`` for `torch_model`.

  Args:
    model: a `SmallCNN`, `CifarCNN`, `WideResNet`, `PreActResNet18`, `DMWideResNet`,
      `DMPreActResNet`, `ResNet` or `InceptionV3` instance or name.
    variables: its ``{'params': ..., 'batch_stats': ...}``, e.g. ``TrainState.variables``.
    input_shape: ``(H, W, C)`` of one image, as for `torch_model`.

  Returns:
    An ordered ``{name: float32 CPU tensor}`` that ``torch_model(model).load_state_dict``
    accepts with ``strict=True``.

  Raises:
    ValueError: naming each variable that is missing, unexpected or of the wrong shape.
  """
  import torch

  model = flax_model(model)
  shapes = _flax_shapes(model, _input_shape(model, input_shape))
  flat = {
    (col,) + path: np.asarray(value)
    for col in ('params', 'batch_stats')
    for path, value in _flat(variables.get(col, {})).items()
  }
  expected = {
    (col,) + path: shape
    for col in ('params', 'batch_stats')
    for path, shape in _flat(shapes[col]).items()
  }
  _check(expected, {k: v.shape for k, v in flat.items()}, 'Flax variables')
  state_dict = {}
  for col, path, key, to_torch, _ in _leaves(model, shapes):
    state_dict[key] = torch.tensor(to_torch(flat[(col,) + path]), dtype=torch.float32)
    if key.endswith('.running_var'):
      state_dict[key.replace('running_var', 'num_batches_tracked')] = torch.tensor(0)
  return {key: state_dict[key] for key in _torch_shapes(model, shapes['input_shape'])}


def from_torch_state_dict(
  model: ModelLike,
  state_dict: Mapping[str, Any],
  *,
  input_shape: Sequence[int] | None = None,
) -> dict[str, Any]:
  """Converts a PyTorch ``state_dict`` of `torch_model`'s architecture to Flax variables.

  Args:
    model: a `SmallCNN`, `CifarCNN`, `WideResNet`, `PreActResNet18`, `DMWideResNet`,
      `DMPreActResNet`, `ResNet` or `InceptionV3` instance or name.
    state_dict: ``{name: tensor or array}``; ``num_batches_tracked`` entries may be absent, and
      for `InceptionV3` so may torchvision's ``AuxLogits.*`` (checked if present, then unused).
    input_shape: ``(H, W, C)`` of one image, as for `torch_model`.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` (no ``batch_stats`` for the plain CNNs) of float32
    JAX arrays, for ``model.apply`` or `ddn_jax.models.make_logits_fn`.

  Raises:
    ValueError: naming each key that is missing, unexpected or of the wrong shape.
  """
  not_arrays = [k for k, v in state_dict.items() if not _is_array(v)]
  if not_arrays:
    raise ValueError(f'PyTorch state_dict entries {not_arrays[:3]} are not tensors or arrays.')
  model = flax_model(model)
  shapes = _flax_shapes(model, _input_shape(model, input_shape))
  expected = _torch_shapes(model, shapes['input_shape'], aux_logits=True)
  got = {k: tuple(v.shape) for k, v in state_dict.items()}
  for key in expected:
    optional = key.endswith('num_batches_tracked') or key.startswith('AuxLogits.')
    if optional and key not in got:
      got[key] = expected[key]
  _check(expected, got, 'PyTorch state_dict')
  variables: dict[str, Any] = {}
  for col, path, key, _, from_torch in _leaves(model, shapes):
    value = state_dict[key]
    array = value.detach().cpu().numpy() if hasattr(value, 'detach') else np.asarray(value)
    node = variables.setdefault(col, {})
    for name in path[:-1]:
      node = node.setdefault(name, {})
    # A copy: on CPU jnp.asarray may alias the tensor's memory, which PyTorch can change in place
    # (a training step updates the running statistics) under the immutable JAX array.
    node[path[-1]] = jnp.array(from_torch(array), jnp.float32, copy=True)
  return variables


def to_torch(
  model: ModelLike, variables: Mapping[str, Any], *, input_shape: Sequence[int] | None = None
) -> torch.nn.Module:
  """`torch_model` loaded with ``variables`` and put in eval mode: the same network in PyTorch."""
  module = torch_model(flax_model(model), input_shape=input_shape)
  module.load_state_dict(to_torch_state_dict(model, variables, input_shape=input_shape))
  return module.eval()


def save_torch_state_dict(
  model: ModelLike,
  variables: Mapping[str, Any],
  path: str | os.PathLike,
  *,
  input_shape: Sequence[int] | None = None,
) -> None:
  """Writes ``variables`` as a PyTorch ``state_dict`` file (``torch.save``)."""
  import torch

  torch.save(to_torch_state_dict(model, variables, input_shape=input_shape), path)


def _is_array(value: Any) -> bool:
  return hasattr(value, 'shape') and hasattr(value, 'dtype')


def _unwrap(loaded: Any, path: str) -> Mapping[str, Any]:
  """The state_dict in what ``torch.load`` read: itself, or the only one nested in a dict."""
  if not isinstance(loaded, Mapping):
    raise ValueError(  # noqa: TRY004 (a file with the wrong content, not a wrong argument)
      f'{path} holds a {type(loaded).__name__}, not a state_dict.'
    )
  if any(_is_array(v) for v in loaded.values()):
    return loaded
  # A training checkpoint, e.g. {'state_dict': ..., 'optimizer': ..., 'epoch': ...}.
  nested = [
    k
    for k, v in loaded.items()
    if isinstance(v, Mapping) and v and all(_is_array(x) for x in v.values())
  ]
  if len(nested) == 1:
    return loaded[nested[0]]
  if nested:
    raise ValueError(
      f'{path} holds several state_dicts, under the keys {nested}: save the one to use alone, '
      f"e.g. torch.save(torch.load(path)[{nested[0]!r}], 'model.pt')."
    )
  raise ValueError(
    f'{path} holds a dict of {sorted({type(v).__name__ for v in loaded.values()})}, not a '
    'state_dict of tensors.'
  )


def load_torch_state_dict(
  model: ModelLike, path: str | os.PathLike, *, input_shape: Sequence[int] | None = None
) -> dict[str, Any]:
  """Reads a PyTorch ``state_dict`` file as Flax variables of ``model``.

  The file is read with ``torch.load(..., weights_only=True)``, which refuses pickled code. A
  training checkpoint holding one ``state_dict`` among other entries (e.g. ``{'state_dict':
  ..., 'optimizer': ..., 'epoch': ...}``) is accepted too.

  Raises:
    FileNotFoundError: no file at ``path``.
    ValueError: if the file is empty, truncated or corrupted, holds pickled objects other than
      tensors, or holds no (or several) ``state_dict`` of ``model``'s architecture; one line
      naming the file.
  """
  return from_torch_state_dict(model, _read_state_dict(path), input_shape=input_shape)


def _read_state_dict(path: str | os.PathLike) -> Mapping[str, Any]:
  """The ``state_dict`` in a PyTorch file, read as `load_torch_state_dict` says (same errors)."""
  import torch

  path = os.fspath(path)
  if os.path.isfile(path) and os.path.getsize(path) == 0:
    raise ValueError(f'{path} is empty: expected a PyTorch state_dict file (torch.save).')
  try:
    loaded = torch.load(path, map_location='cpu', weights_only=True)
  except FileNotFoundError:
    raise
  except pickle.UnpicklingError as e:
    raise ValueError(
      f'{path} holds pickled objects other than tensors, which weights_only loading refuses '
      '(they could run code): save the weights alone, torch.save(model.state_dict(), path).'
    ) from e
  except Exception as e:  # torch.load raises anything on a damaged file, even a KeyError
    first_line = str(e).strip().split('\n')[0].split('. ')[0][:200]
    raise ValueError(
      f'{path} is not a readable PyTorch file, e.g. truncated or corrupted '
      f'({type(e).__name__}: {first_line}).'
    ) from e
  return _unwrap(loaded, path)
