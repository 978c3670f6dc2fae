"""ALMA (L2) against adv-lib 0.2.8's own on the same weights and images: norms, success, time.

Runs `ddn_jax.attacks.alma_l2` with the registry's adv-lib settings and adv-lib's ``alma`` on the
reference MNIST SmallCNN (`ddn_jax.reference.mnist_small_cnn`, held-out real digits) and on the
linear model of `ddn_jax.reference.LinearProblem` (exact minimal norms), and, where asked, each
side again on the digits moved by one float32 ulp (how far rounding alone moves a side). Writes
``alma_parity.{md,json,csv}`` under ``--out``.

  python -m experiments.alma_parity --config experiments/configs/alma_parity.py
"""

from __future__ import annotations

import functools

from experiments import _adv_lib_parity, _report

_MODULE = 'experiments.alma_parity'


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='alma_parity',
    title='ALMA: ddn_jax against adv-lib',
    run=functools.partial(_adv_lib_parity.run, attack='alma'),
    torch=True,
  )


if __name__ == '__main__':
  main()
