"""Running the reference PyTorch library adv-lib (the DDN authors') on the same weights and images."""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from ddn_jax import attacks

# The ddn_jax settings of each comparison, by function name: the registry's ``adv_lib_settings``,
# the options that reproduce adv-lib's algorithm (`ref_kwargs` derives adv-lib's arguments).
DEFAULT_HPARAMS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
  {e.function.__name__: e.adv_lib_settings for e in attacks.ATTACKS.values() if e.adv_lib}
)
# adv-lib's DDN fixes its step sizes in code: cosine from 1 towards 0.01.
_ADV_LIB_DDN_ALPHAS = {'alpha_init': 1.0, 'alpha_final': 0.01}


@dataclasses.dataclass(frozen=True)
class SideResult:
  """One side's run of one attack on ``N`` images.

  Attributes:
    adv: ``(N, H, W, C)`` returned images (the clean image where the attack failed).
    l2: ``(N,)`` L2 norms of ``adv - images``.
    success: ``(N,)`` bool, ``adv`` is adversarial on that side's model.
    grads_per_example: mean gradient evaluations (backward passes through the model) per
      example, counted alike on both sides (see `run_adv_lib`).
    seconds: wall time of the attack call (for JAX, a warm call unless ``compile_seconds`` is
      None, in which case it includes compilation).
    compile_seconds: for JAX with warm-up, first-call time minus warm time; else None.
  """

  adv: np.ndarray
  l2: np.ndarray
  success: np.ndarray
  grads_per_example: float
  seconds: float
  compile_seconds: float | None = None


def _stand_in(name: str, needed_by: str) -> types.ModuleType:
  module = types.ModuleType(name)
  module.__doc__ = f'ddn_jax.interop stand-in: {name} failed to import; {needed_by}.'

  def missing(attr):
    if attr.startswith('__'):  # Import machinery probes (__path__, ...) must see a plain module.
      raise AttributeError(attr)
    raise ImportError(f'{name}.{attr} is unavailable: {module.__doc__}')

  module.__getattr__ = missing
  return module


def import_adv_lib() -> types.ModuleType:
  """Imports and returns ``adv_lib.attacks``.

  adv-lib imports ``torchvision`` (for its LPIPS distance) and ``visdom`` (a live-plot callback)
  when the package is imported, though none of DDN, C&W, DeepFool or FMN uses them. Where either
  fails to import (no CPU torchvision build, visdom not installed) a stand-in module that
  raises on use is put in ``sys.modules`` first; with working packages nothing is replaced.

  Raises:
    ImportError: if torch or adv-lib is not installed (``pip install 'ddn_jax[torch]'``).
  """
  for name, needed_by in (
    ('torchvision', "only adv-lib's LPIPS distance uses it"),
    ('visdom', "only adv-lib's VisdomLogger callback uses it"),
  ):
    if name in sys.modules:
      continue
    try:
      __import__(name)
    except Exception:  # noqa: BLE001 (a CUDA-only torchvision raises RuntimeError, not ImportError)
      for key in [k for k in sys.modules if k == name or k.startswith(name + '.')]:
        del sys.modules[key]
      sys.modules[name] = stand_in = _stand_in(name, needed_by)
      if name == 'torchvision':
        sys.modules['torchvision.models'] = stand_in.models = _stand_in(
          'torchvision.models', needed_by
        )
  import adv_lib.attacks

  return adv_lib.attacks


def _counting(module, *, skip_zero_rows: bool):
  """Wraps ``module`` so that it counts the examples in each backward pass through it.

  With ``skip_zero_rows``, an example whose gradient with respect to the logits is exactly zero
  (one the attack has dropped but whose row is still in the batch) is not counted.
  """
  import torch

  class Counting(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.model = module
      self.backward_rows = 0

    def forward(self, x):
      out = self.model(x)
      if out.requires_grad:
        out.register_hook(self._count)
      return out

    def _count(self, grad):
      rows = grad.flatten(1).ne(0).any(1).sum().item() if skip_zero_rows else grad.shape[0]
      self.backward_rows += rows

  return Counting()


def ref_kwargs(attack: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
  """adv-lib's keyword arguments for ``attack`` with ddn_jax's ``hparams``.

  Options that only select ddn_jax's variant of the algorithm (``alpha_schedule``, the
  ``abort_early`` rule, ``candidates``, APGD's ``reduce_rule``) have no adv-lib argument:
  adv-lib always runs its own.

  Raises:
    ValueError: ``hparams`` asks for something adv-lib cannot do (e.g. other DDN step sizes).
  """
  attack = attacks.get_attack(attack).function.__name__
  hparams = dict(hparams)
  if attack == 'ddn':
    for name, value in _ADV_LIB_DDN_ALPHAS.items():
      if name in hparams and float(hparams[name]) != value:
        raise ValueError(f"adv-lib's DDN fixes {name} = {value}, got {hparams[name]}.")
    return {
      'steps': hparams['steps'],
      'γ': float(hparams['gamma']),
      'init_norm': float(hparams['init_norm']),
      'levels': hparams['levels'],
    }
  if attack == 'carlini_wagner_l2':
    floats = ('learning_rate', 'initial_const', 'confidence')  # An int constant crashes adv-lib.
    kwargs = {k: float(v) if k in floats else v for k, v in hparams.items()}
    kwargs['max_iterations'] = kwargs.pop('steps', kwargs.get('max_iterations'))
    # adv-lib's only rule is per batch; ddn_jax's default (no abort) is adv-lib's False.
    kwargs['abort_early'] = bool(kwargs.get('abort_early', False))
    return kwargs
  if attack == 'deepfool':
    return {'steps': hparams['steps'], 'overshoot': float(hparams['overshoot']), 'norm': 2}
  if attack == 'fmn_l2':
    names = {'alpha_init': 'α_init', 'alpha_final': 'α_final', 'gamma_init': 'γ_init'}
    names['gamma_final'] = 'γ_final'
    kwargs = {'norm': 2, 'steps': hparams['steps']}
    kwargs.update({names[k]: float(v) for k, v in hparams.items() if k in names and v is not None})
    return kwargs
  if attack in ('apgd_l2', 'apgd_targeted_l2'):
    # eps is the run's (no default); adv-lib always halves by its own rule (reduce_rule).
    kwargs = {'norm': 2, 'eps': float(hparams['eps']), 'n_iter': hparams.get('steps', 100)}
    kwargs['rho'] = float(hparams.get('rho', 0.75))
    if attack == 'apgd_l2':
      kwargs['n_restarts'] = hparams.get('restarts', 1)
      kwargs['loss_function'] = hparams.get('loss', 'dlr')
    else:
      kwargs['num_targets'] = hparams.get('num_targets', 9)
    return kwargs
  if attack == 'alma_l2':
    names = {
      'learning_rate': 'lr_init',
      'learning_rate_reduction': 'lr_reduction',
      'multiplier_init': 'μ_init',
      'penalty_init': 'ρ_init',
      'improvement_rate': 'τ',
      'penalty_growth': 'γ',
      'multiplier_smoothing': 'α',
      'rms_smoothing': 'α_rms',
      'momentum': 'momentum',
      'logit_tolerance': 'logit_tolerance',
    }
    import_adv_lib()  # its stand-ins first
    from adv_lib.utils.lagrangian_penalties import all_penalties

    kwargs = {'num_steps': hparams.get('steps', 1000), 'distance': 'l2'}
    kwargs.update({names[k]: float(v) for k, v in hparams.items() if k in names and v is not None})
    kwargs.update({k: hparams[k] for k in ('check_steps', 'levels') if k in hparams})
    kwargs['penalty'] = all_penalties[hparams.get('penalty', 'P2')]
    return kwargs
  if attack in ('fab_l2', 'fab_targeted_l2'):
    if hparams.get('eps') is not None:
      raise ValueError("adv-lib's fab has no eps criterion (its ε only scales random starts).")
    kwargs = {'norm': 2, 'n_iter': hparams.get('steps', 100)}
    names = {'alpha_max': 'α_max', 'beta': 'β', 'eta': 'η'}
    kwargs.update({names[k]: float(v) for k, v in hparams.items() if k in names})
    if attack == 'fab_l2':
      kwargs['restarts'] = hparams.get('restarts', 1)
      return kwargs
    if hparams.get('restarts', 1) != 1:
      raise ValueError("adv-lib's FAB-T runs each target once: restarts must be 1.")
    return {**kwargs, 'targeted_restarts': True, 'restarts': hparams.get('num_targets', 9)}
  raise ValueError(f'Unknown attack {attack!r}; expected one of {sorted(DEFAULT_HPARAMS)}.')


def run_adv_lib(
  attack: str,
  module,
  images: np.ndarray,
  labels: np.ndarray,
  hparams: Mapping[str, Any],
  *,
  targeted: bool = False,
  seed: int = 0,
) -> SideResult:
  """Runs adv-lib's ``attack`` on a PyTorch ``module`` (e.g. from `to_torch`).

  Args:
    attack: an attack with an adv-lib counterpart, by registry or function name (``'ddn'``,
      ``'cw'`` or ``'carlini_wagner_l2'``, ``'deepfool'``, ``'fmn'``, ``'apgd'``, ``'apgd-t'``,
      ``'alma'``).
    module: PyTorch model in eval mode taking NCHW images in [0, 1]; the attack runs on its
      device (CPU or CUDA).
    images: ``(N, H, W, C)`` float32 images in [0, 1] (transposed to NCHW here).
    labels: ``(N,)`` int labels (targets when ``targeted``).
    hparams: hyperparameters under their ddn_jax names, as in `DEFAULT_HPARAMS`.
    targeted: targeted attack.
    seed: ``torch.manual_seed`` before the call (DDN draws a random direction for a zero
      gradient, APGD its random starts).

  Returns:
    A `SideResult`. Gradient evaluations are the examples in each backward pass through the
    model, counted with a hook on the logits, as ddn_jax counts them: one per DDN/FMN step and per
    C&W Adam step, and DeepFool's one backward pass per competing class. adv-lib's DeepFool also
    runs those passes on the rows of examples that have just become adversarial, with zero
    gradients; the algorithm does not use them, so (as in ddn_jax) they are not counted.

  Raises:
    ValueError: DeepFool with ``candidates`` other than the number of classes (adv-lib
      linearises every class).
  """
  import torch

  entry = attacks.get_attack(attack)
  fn, attack = getattr(import_adv_lib(), entry.adv_lib), entry.function.__name__
  device = next(module.parameters()).device  # Run where the module is (CPU or CUDA).
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32)).to(device)
  y = torch.from_numpy(np.asarray(labels, np.int64)).to(device)
  if attack == 'deepfool':
    with torch.no_grad():
      num_classes = module.eval()(x[:1]).shape[1]
    # None is ddn_jax's default, the 10 most likely classes (all of them for up to 10).
    candidates = hparams.get('candidates') or min(10, num_classes)
    if candidates != num_classes:
      raise ValueError(
        f'adv-lib linearises all {num_classes} classes; DeepFool with candidates='
        f'{candidates} has no adv-lib counterpart.'
      )
  counted = _counting(module.eval(), skip_zero_rows=attack == 'deepfool')
  torch.manual_seed(seed)
  start = time.perf_counter()
  adv = fn(counted, x, y, targeted=targeted, **ref_kwargs(attack, hparams))
  if x.is_cuda:
    torch.cuda.synchronize(device)
  seconds = time.perf_counter() - start
  with torch.no_grad():
    pred = module(adv).argmax(1)
  success = (pred == y) if targeted else (pred != y)
  adv = adv.detach().cpu().numpy().transpose(0, 2, 3, 1)
  return SideResult(
    adv=adv,
    l2=np.linalg.norm((adv - images).reshape(len(images), -1), axis=1),
    success=success.cpu().numpy(),
    grads_per_example=counted.backward_rows / len(images),
    seconds=seconds,
  )
