"""Reproducibility against PyTorch: the same networks and weights on both sides, and adv-lib runs.

Needs the optional ``torch`` extra (and ``adv-lib`` for the comparisons); nothing outside this
package imports torch, and this package imports it only inside the functions that need it.
"""

from ddn_jax.interop._adv_lib import DEFAULT_HPARAMS
from ddn_jax.interop._adv_lib import SideResult
from ddn_jax.interop._adv_lib import import_adv_lib
from ddn_jax.interop._adv_lib import ref_kwargs
from ddn_jax.interop._adv_lib import run_adv_lib
from ddn_jax.interop._compare import agreement_stats
from ddn_jax.interop._compare import compare
from ddn_jax.interop._compare import machine_info
from ddn_jax.interop._compare import run_ddn_jax
from ddn_jax.interop._compare import to_markdown
from ddn_jax.interop._convert import from_torch_state_dict
from ddn_jax.interop._convert import load_torch_state_dict
from ddn_jax.interop._convert import save_torch_state_dict
from ddn_jax.interop._convert import to_torch
from ddn_jax.interop._convert import to_torch_state_dict
from ddn_jax.interop._convert import torch_model

__all__ = [
  'DEFAULT_HPARAMS',
  'SideResult',
  'agreement_stats',
  'compare',
  'from_torch_state_dict',
  'import_adv_lib',
  'load_torch_state_dict',
  'machine_info',
  'ref_kwargs',
  'run_adv_lib',
  'run_ddn_jax',
  'save_torch_state_dict',
  'to_markdown',
  'to_torch',
  'to_torch_state_dict',
  'torch_model',
]
