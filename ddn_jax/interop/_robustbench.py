"""RobustBench CIFAR-10 checkpoints as Flax models: architecture, weights and input normalisation.

RobustBench (Croce et al., 2021) defines each leaderboard entry as a PyTorch class and downloads
its weights at run time; here the user's own downloaded file (or loaded ``state_dict``) is
converted, and nothing is fetched. An entry's input normalisation lives in its ``mu``/``sigma``
buffers (``mean``/``std`` in the DDN authors' own checkpoints) and becomes the Flax model's
``mean``/``std``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import numpy as np

from ddn_jax import models
from ddn_jax.interop._convert import _is_array, _read_state_dict, from_torch_state_dict

_NO_NORMALISATION = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
# The values of RobustBench's model_zoo/cifar10.py buffers, used where a file lacks them (as
# RobustBench does: it loads Rony2019Decoupling's and Rice2020Overfitting's non-strictly).
_DDN_STATS = ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262))
_RICE_STATS = ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616))
_AUGUSTIN_STATS = (
  (0.4913997551666284, 0.48215855929893703, 0.4465309133731618),
  (0.24703225141799082, 0.24348516474564, 0.26158783926049628),
)
_ENGSTROM_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


class _Entry(NamedTuple):
  architecture: type[nn.Module]
  kwargs: dict[str, Any]
  stats: tuple[tuple[float, ...], tuple[float, ...]] | None  # None: the architecture's own


# DeepMind's networks: RobustBench builds each with Swish (or nn.SiLU, the same function) and
# dm_wide_resnet.py's CIFAR10_MEAN/STD, the Flax modules' defaults.
_DM_WRN_28_10 = _Entry(models.DMWideResNet, {'depth': 28, 'width': 10}, None)
_DM_WRN_70_16 = _Entry(models.DMWideResNet, {'depth': 70, 'width': 16}, None)
_DM_PREACT_18 = _Entry(models.DMPreActResNet, {'depth': 18}, None)


# RobustBench 1.1.1's CIFAR-10 L2 leaderboard entries whose architecture ddn_jax has.
_ENTRIES: dict[str, _Entry] = {
  'Standard': _Entry(models.WideResNet, {'depth': 28, 'width': 10}, _NO_NORMALISATION),
  'Rony2019Decoupling': _Entry(models.WideResNet, {'depth': 28, 'width': 10}, _DDN_STATS),
  'Wu2020Adversarial': _Entry(models.WideResNet, {'depth': 34, 'width': 10}, _NO_NORMALISATION),
  'Sehwag2021Proxy': _Entry(models.WideResNet, {'depth': 34, 'width': 10}, _NO_NORMALISATION),
  'Augustin2020Adversarial_34_10': _Entry(
    models.WideResNet, {'depth': 34, 'width': 10}, _AUGUSTIN_STATS
  ),
  'Augustin2020Adversarial_34_10_extra': _Entry(
    models.WideResNet, {'depth': 34, 'width': 10}, _AUGUSTIN_STATS
  ),
  'Rice2020Overfitting': _Entry(models.PreActResNet18, {}, _RICE_STATS),
  'Sehwag2021Proxy_R18': _Entry(models.ResNet, {'depth': 18}, _NO_NORMALISATION),
  'Augustin2020Adversarial': _Entry(models.ResNet, {'depth': 50}, _AUGUSTIN_STATS),
  'Engstrom2019Robustness': _Entry(models.ResNet, {'depth': 50}, _ENGSTROM_STATS),
  'Gowal2020Uncovering': _DM_WRN_70_16,
  'Gowal2020Uncovering_extra': _DM_WRN_70_16,
  'Rebuffi2021Fixing_70_16_cutmix_ddpm': _DM_WRN_70_16,
  'Rebuffi2021Fixing_28_10_cutmix_ddpm': _DM_WRN_28_10,
  'Rebuffi2021Fixing_70_16_cutmix_extra': _DM_WRN_70_16,
  'Rebuffi2021Fixing_R18_cutmix_ddpm': _DM_PREACT_18,
  'Rade2021Helper_R18_ddpm': _DM_PREACT_18,
  'Wang2023Better_WRN-28-10': _DM_WRN_28_10,
  'Wang2023Better_WRN-70-16': _DM_WRN_70_16,
}
# The other L2 entries, by the architecture ddn_jax lacks.
_MISSING = {
  'Ding2020MMA': 'WideResNet-28-4 with per-image input standardisation',
  'Amini2024MeanSparse_S-WRN-70-16': 'a mean-sparsified WideResNet-70-16',
}
# Key prefixes of wrapped models, stripped as RobustBench's load_model does: DataParallel's
# 'module.', and 'model.' of a normalising wrapper (e.g. the DDN authors' NormalizedModel).
_PREFIXES = ('module.', 'model.')
_ARCHITECTURES = (
  models.WideResNet,
  models.PreActResNet18,
  models.ResNet,
  models.DMWideResNet,
  models.DMPreActResNet,
)
_ARCHITECTURE_NAMES = ', '.join(a.__name__ for a in _ARCHITECTURES)
_NORMALISATION_KEYS = (('mu', 'sigma'), ('mean', 'std'))


def _model(model: str | nn.Module) -> tuple[nn.Module, tuple | None]:
  """The Flax module and its fallback ``(mean, std)`` (None: the module's own)."""
  if isinstance(model, nn.Module):
    if type(model) not in _ARCHITECTURES:
      raise TypeError(
        f'from_robustbench converts a {_ARCHITECTURE_NAMES}, not a {type(model).__name__}.'
      )
    return model, None
  if model in _ENTRIES:
    entry = _ENTRIES[model]
    return entry.architecture(**entry.kwargs), entry.stats
  if model in _MISSING:
    raise ValueError(
      f'RobustBench entry {model!r} is a {_MISSING[model]}, which ddn_jax does not implement; '
      f'supported entries: {sorted(_ENTRIES)}.'
    )
  raise ValueError(
    f'Unknown RobustBench entry {model!r}; expected one of the CIFAR-10 L2 entries '
    f'{sorted(_ENTRIES)}, or a module ({_ARCHITECTURE_NAMES}) for other entries.'
  )


def _strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  out = {}
  for key, value in state_dict.items():
    for prefix in _PREFIXES:
      key = key.removeprefix(prefix)
    out[key] = value
  return out


def _channel_values(name: str, value: Any, channels: int) -> tuple[float, ...]:
  array = value.detach().cpu().numpy() if hasattr(value, 'detach') else np.asarray(value)
  if array.size != channels:
    raise ValueError(
      f'state_dict entry {name!r} has shape {tuple(array.shape)}: expected one value per input '
      f'channel ({channels}).'
    )
  return tuple(float(v) for v in array.astype(np.float32).reshape(-1))


def _normalisation(state_dict: dict[str, Any], channels: int) -> tuple | None:
  """Pops the ``(mean, std)`` buffers out of ``state_dict``; None if it has none."""
  found = [pair for pair in _NORMALISATION_KEYS if any(k in state_dict for k in pair)]
  if not found:
    return None
  if len(found) > 1:
    raise ValueError(
      f'The state_dict holds two input normalisations, {found[0]} and {found[1]}: keep one.'
    )
  mean_key, std_key = found[0]
  present = [k for k in found[0] if k in state_dict]
  if len(present) == 1:
    raise ValueError(
      f'The state_dict has {present[0]!r} but not {mean_key!r} and {std_key!r}: an input '
      'normalisation needs both.'
    )
  mean = _channel_values(mean_key, state_dict.pop(mean_key), channels)
  std = _channel_values(std_key, state_dict.pop(std_key), channels)
  if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and min(std) > 0):
    raise ValueError(
      f'Input normalisation {mean_key}={mean}, {std_key}={std} is not usable: it must be '
      f'finite with a positive {std_key}.'
    )
  return mean, std


def from_robustbench(
  model: str | nn.Module, state_dict: Mapping[str, Any] | str | os.PathLike
) -> tuple[nn.Module, dict[str, Any]]:
  """A RobustBench CIFAR-10 model, from its checkpoint, as a Flax module and its variables.

  Nothing is downloaded: get the checkpoint yourself (RobustBench's ``load_model`` saves it as
  ``models/cifar10/L2/{name}.pt``). RobustBench's key prefixes ``module.`` and ``model.`` are
  stripped; the input normalisation buffers ``mu``/``sigma`` (or ``mean``/``std``, as in the
  DDN authors' own checkpoints) become the module's ``mean``/``std``, and where the file has
  none, the entry's own values in RobustBench's code are used, as RobustBench does. The
  ``sub_block1`` of RobustBench's WideResNet, built but never run, is dropped.

  Args:
    model: the name of a CIFAR-10 L2 leaderboard entry of a supported architecture: `WideResNet`
      (``'Standard'`` and ``'Rony2019Decoupling'``, WRN-28-10; ``'Wu2020Adversarial'``,
      ``'Sehwag2021Proxy'``, ``'Augustin2020Adversarial_34_10'`` and
      ``'Augustin2020Adversarial_34_10_extra'``, WRN-34-10), `PreActResNet18`
      (``'Rice2020Overfitting'``), `ResNet` (``'Sehwag2021Proxy_R18'``, ResNet-18;
      ``'Augustin2020Adversarial'`` and ``'Engstrom2019Robustness'``, ResNet-50), `DMWideResNet` (``'Gowal2020Uncovering'``,
      ``'Gowal2020Uncovering_extra'``, ``'Rebuffi2021Fixing_70_16_cutmix_ddpm'``,
      ``'Rebuffi2021Fixing_70_16_cutmix_extra'`` and ``'Wang2023Better_WRN-70-16'``, WRN-70-16;
      ``'Rebuffi2021Fixing_28_10_cutmix_ddpm'`` and ``'Wang2023Better_WRN-28-10'``, WRN-28-10)
      or `DMPreActResNet` (``'Rebuffi2021Fixing_R18_cutmix_ddpm'`` and
      ``'Rade2021Helper_R18_ddpm'``); or for any other entry of these architectures the module
      built as the entry's class (e.g. ``PreActResNet18(activated_shortcut=False,
      final_norm=False)`` for RobustBench's ``PreActBlock`` entries such as Linf
      ``Wong2020Fast``, ``DMWideResNet(depth=34, width=20)`` for Linf
      ``Gowal2020Uncovering_34_20``), whose ``mean``/``std`` apply where the file has no
      normalisation.
    state_dict: the checkpoint: a ``state_dict`` (``{name: tensor or array}``), or the path of
      a PyTorch file holding one (read as `load_torch_state_dict` reads it, a training
      checkpoint ``{'state_dict': ...}`` included).

  Returns:
    ``(module, variables)``: the Flax module (input normalisation inside, taking NHWC images in
    [0, 1]) and its ``{'params': ..., 'batch_stats': ...}``, e.g. for
    `ddn_jax.models.make_logits_fn`.

  Raises:
    ValueError: an unknown entry, or one whose architecture ddn_jax lacks; a state_dict that
      does not match the architecture (naming each missing, unexpected or mis-shaped key); an
      unusable normalisation; an unreadable file.
    TypeError: a module of another architecture.

  References:
    Croce et al., 2021, "RobustBench: a standardized adversarial robustness benchmark".
  """
  module, fallback = _model(model)
  if isinstance(state_dict, (str, os.PathLike)):
    state_dict = _read_state_dict(state_dict)
  not_arrays = [k for k, v in state_dict.items() if not _is_array(v)]
  if not_arrays:
    raise ValueError(f'state_dict entries {not_arrays[:3]} are not tensors or arrays.')
  cleaned = _strip_prefixes(state_dict)
  if isinstance(module, models.WideResNet):
    cleaned = {k: v for k, v in cleaned.items() if not k.startswith('sub_block1.')}
  stats = _normalisation(cleaned, channels=3) or fallback
  if stats is not None:
    module = module.clone(mean=stats[0], std=stats[1])
  return module, from_torch_state_dict(module, cleaned)
