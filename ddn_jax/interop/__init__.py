"""Reproducibility against PyTorch: the same networks and weights on both sides, and adv-lib runs.

Needs the optional ``torch`` extra (and ``adv-lib`` for the comparisons); nothing outside this
package imports torch, and this package imports it only inside the functions that need it.
"""

from ddn_jax.interop._adv_lib import (
  DEFAULT_HPARAMS,
  SideResult,
  import_adv_lib,
  ref_kwargs,
  run_adv_lib,
)
from ddn_jax.interop._compare import (
  agreement_stats,
  compare,
  run_ddn_jax,
)
from ddn_jax.interop._convert import (
  from_torch_state_dict,
  load_torch_state_dict,
  save_torch_state_dict,
  to_torch,
  to_torch_state_dict,
  torch_model,
)

__all__ = [
  'DEFAULT_HPARAMS',
  'SideResult',
  'agreement_stats',
  'compare',
  'from_torch_state_dict',
  'import_adv_lib',
  'load_torch_state_dict',
  'ref_kwargs',
  'run_adv_lib',
  'run_ddn_jax',
  'save_torch_state_dict',
  'to_torch',
  'to_torch_state_dict',
  'torch_model',
]
