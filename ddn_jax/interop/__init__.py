"""Reproducibility against PyTorch: the same networks and weights on both sides, and adv-lib runs.

Needs the optional ``torch`` extra (and ``adv-lib`` for the comparisons); nothing outside this
package imports torch, and this package imports it only inside the functions that need it.
`compare` runs attacks on both sides and reports their agreement; its pieces (one side at a
time, the statistics) are in `ddn_jax.interop.comparison`. `from_robustbench` reads RobustBench
checkpoints (downloaded by the user) into Flax models, input normalisation included.
"""

from ddn_jax.interop import comparison
from ddn_jax.interop._adv_lib import DEFAULT_HPARAMS, import_adv_lib
from ddn_jax.interop._compare import compare
from ddn_jax.interop._convert import (
  from_torch_state_dict,
  load_torch_state_dict,
  save_torch_state_dict,
  to_torch,
  to_torch_state_dict,
  torch_model,
)
from ddn_jax.interop._robustbench import from_robustbench

__all__ = [
  'DEFAULT_HPARAMS',
  'compare',
  'comparison',
  'from_robustbench',
  'from_torch_state_dict',
  'import_adv_lib',
  'load_torch_state_dict',
  'save_torch_state_dict',
  'to_torch',
  'to_torch_state_dict',
  'torch_model',
]
