"""The pieces `ddn_jax.interop.compare` is made of, for studies that need one side at a time.

`run_ddn_jax` and `run_adv_lib` run one attack on one side (ddn_jax, or adv-lib on the PyTorch
twin of the network) and return a `SideResult`; `agreement_stats` compares two of them (success
agreement, median L2, quantiles of the per-example L2 ratio); `ref_kwargs` translates ddn_jax's
hyperparameters into adv-lib's arguments. `experiments/compare_noise.py` uses them to measure how
far float rounding alone moves a comparison, the tests to bound it.
"""

from ddn_jax.interop._adv_lib import SideResult, ref_kwargs, run_adv_lib
from ddn_jax.interop._compare import agreement_stats, run_ddn_jax

__all__ = ('SideResult', 'agreement_stats', 'ref_kwargs', 'run_adv_lib', 'run_ddn_jax')
