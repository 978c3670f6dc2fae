"""FAB and FAB-T (L2) against adv-lib 0.2.8's ``fab`` on the same weights and images.

Runs `ddn_jax.attacks.fab_l2` and `ddn_jax.attacks.fab_targeted_l2` with the registry's adv-lib
settings and adv-lib's ``fab(norm=2)`` (FAB-T: ``targeted_restarts=True``) on the reference
MNIST SmallCNN (`ddn_jax.reference.mnist_small_cnn`, held-out real digits) and on the linear
model of `ddn_jax.reference.LinearProblem` (exact minimal norms), and, where asked, each side
again on the digits moved by one float32 ulp (how far rounding alone moves a side). Writes
``fab_parity.{md,json,csv}`` under ``--out``.

  python -m experiments.fab_parity --config experiments/configs/fab_parity.py
"""

from __future__ import annotations

from experiments import _adv_lib_parity, _report

_MODULE = 'experiments.fab_parity'


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='fab_parity',
    title='FAB and FAB-T: ddn_jax against adv-lib',
    run=_adv_lib_parity.run,
    torch=True,
  )


if __name__ == '__main__':
  main()
