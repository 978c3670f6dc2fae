"""The benchmark: ddn_jax's attacks against the bare gradient, adv-lib and foolbox, on this machine.

  python -m ddn_jax.benchmark --preset cpu       # about 20 minutes on a 2-core CPU
  python -m ddn_jax.benchmark --preset gpu       # on a GPU machine (PyTorch on the same GPU)
  python -m ddn_jax.benchmark --preset tiny --out /tmp/bench   # a minute; what the test runs

Writes ``<out>/<machine>.json`` and ``<out>/<machine>.md`` (default ``results/bench``) with:

* **gradient**: one jitted value-and-grad of each model (the summed cross-entropy w.r.t. the
  input) against PyTorch's forward+backward of the same network and weights
  (`ddn_jax.interop.to_torch`);
* **attacks**: DDN, C&W 1×K, DeepFool and FMN with the settings under which ours runs adv-lib's
  algorithm (`ddn_jax.attacks.AttackEntry.adv_lib_settings`), in ddn_jax, adv-lib (PyTorch) and
  foolbox 3 (JAX backend), same weights, images and hyperparameters, timed alternately in one
  run; medians over repeats after a warm-up round; ddn_jax's compile time is measured apart
  (ahead-of-time ``lower().compile()``). Per attack: seconds per 1000 images, gradient
  evaluations per example and the **overhead** = attack time / (gradient evaluations × time of
  one bare gradient on the same batch), the bare gradient being timed in every round, both as
  one jitted call and inside one compiled loop (no per-call dispatch, which on a GPU exceeds a
  small model's compute);
* **C&W 9×10000** with early abort on a few images;
* **compaction**: DeepFool and C&W with its per-example abort, with and without dropping the
  examples that have stopped (`ddn_jax.attacks.compacting_while_loop` against the plain vmapped
  loop);
* **FLOP/s**: each model's FLOPs per image for a forward pass and an input gradient (XLA's cost
  analysis, `model_flops`), and for every timed row the achieved FLOP/s and its fraction of the
  device's peak in the run's precision (`device_peak`: `PEAKS`, vendors' figures for known
  accelerators, else a large matrix product measured on the device, all cores). Recorded results
  get them afterwards with ``--annotate FILE.json`` (`annotate`);
* **scaling** in batch size and in steps (time and peak memory, each point in a fresh process so
  that peak RSS is that point's), and a vmapped sweep of G values of DDN's gamma
  (`ddn_jax.evaluation.sweep`) against G separate runs.

PyTorch, adv-lib and foolbox are optional: a side that cannot run is recorded in the results
with the reason. Timings on a shared machine are noisy: the load average at the start and the end
is recorded, and ratios measured within one round are the numbers to compare.
"""

from ddn_jax.benchmark._command import build_parser, main
from ddn_jax.benchmark._flops import PEAKS, PRECISIONS, add_flop_rates, device_peak, model_flops
from ddn_jax.benchmark._markdown import to_markdown
from ddn_jax.benchmark._presets import (
  ATTACKS,
  IMPLEMENTATIONS,
  MODELS,
  PRESETS,
  RUN_PRECISIONS,
  SECTIONS,
)
from ddn_jax.benchmark._run import annotate, run

__all__ = [
  'ATTACKS',
  'IMPLEMENTATIONS',
  'MODELS',
  'PEAKS',
  'PRECISIONS',
  'PRESETS',
  'RUN_PRECISIONS',
  'SECTIONS',
  'add_flop_rates',
  'annotate',
  'build_parser',
  'device_peak',
  'main',
  'model_flops',
  'run',
  'to_markdown',
]
