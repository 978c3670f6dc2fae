"""The parts of ddn_jax.interop that need neither torch nor adv-lib: they run everywhere."""

import importlib
import subprocess
import sys

import numpy as np
import pytest

from ddn_jax import interop


def test_agreement_stats():
  # The markdown of a comparison is tested with these sides in test_reports.py.
  side = lambda l2, success, seconds: interop.comparison.SideResult(
    adv=np.zeros((4, 1, 1, 1)),
    l2=np.asarray(l2),
    success=np.asarray(success),
    grads_per_example=10.0,
    seconds=seconds,
  )
  ours = side([1.0, 2.0, 0.0, 0.0], [True, True, True, False], 1.0)
  ref = side([1.0, 1.0, 0.0, 3.0], [True, True, True, True], 2.0)
  stats = interop.comparison.agreement_stats(ours, ref)
  assert stats['success_agreement'] == 0.75
  assert stats['median_l2'] == {'ddn_jax': 1.0, 'adv_lib': 1.0}
  assert stats['mean_l2_rel_diff'] == pytest.approx(1.0 / 1.25 - 1)
  assert stats['l2_ratio_n'] == 2
  assert stats['l2_ratio_quantiles']['0.5'] == 1.5
  # A norm of 0 on one side (C&W returns a clean-misclassified input exactly; adv-lib through
  # its tanh round trip) gives no ratio.
  zero = interop.comparison.agreement_stats(
    side([0.0, 1.0], [True] * 2, 1.0), side([1e-6, 2.0], [True] * 2, 1.0)
  )
  assert zero['l2_ratio_n'] == 1 and zero['l2_ratio_quantiles']['0.0'] == 0.5


@pytest.mark.parametrize('name', ['compare_pytorch', 'compare_noise', 'cw_abort_rule'])
def test_experiment_cli_help(name):
  module = importlib.import_module(f'experiments.{name}')
  with pytest.raises(SystemExit) as exit_:
    module.main(['--help'])
  assert exit_.value.code == 0


def test_core_does_not_import_torch():
  code = (
    'import sys, ddn_jax, ddn_jax.attacks, ddn_jax.models, ddn_jax.training, ddn_jax.data, '
    "ddn_jax.evaluation, ddn_jax.interop; assert 'torch' not in sys.modules, 'torch imported'"
  )
  subprocess.run([sys.executable, '-c', code], check=True)
