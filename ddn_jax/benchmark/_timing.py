"""Clocks and the reference every attack is measured against: the bare model gradient."""

from __future__ import annotations

import resource
import time

import jax
import optax

from ddn_jax import attacks


def timed(fn) -> float:
  """Wall seconds of ``fn()``, its result blocked on."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def cpu_time() -> float:
  """This process's CPU time, all threads: steadier than wall time on a shared machine."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def timed_both(fn) -> tuple[float, float]:
  """(wall, CPU) seconds of ``fn()``, its result blocked on."""
  cpu, start = cpu_time(), time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start, cpu_time() - cpu


def error_text(e: BaseException) -> str:
  """One line for the results: the exception's type and the first line of its message."""
  return f'{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ""}'[:400]


def temp_bytes(compiled) -> int | None:
  """The compiled program's XLA scratch memory, where the backend reports it."""
  try:
    return int(compiled.memory_analysis().temp_size_in_bytes)
  except Exception:  # noqa: BLE001 (not every backend reports it)
    return None


def bare_gradient(logits_fn):
  """Summed cross-entropy and its gradient w.r.t. the images: one forward+backward."""

  def value_and_grad(x, y):
    loss = lambda x: optax.softmax_cross_entropy_with_integer_labels(logits_fn(x), y).sum()
    return jax.value_and_grad(loss)(x)

  return value_and_grad


def gradient_loop(logits_fn, count: int):
  """``count`` dependent gradients in one program: the model's cost without per-call dispatch.

  Each input is the last one plus ``1e-30`` times its gradient (below float32 resolution next to
  pixel values, but XLA cannot know that), so no evaluation can be hoisted or skipped. The
  convolutions are channels-last, as in the attacks' loops (XLA:CPU runs the other form several
  times slower inside a loop: ``benchmarks/LOOP_FORMS.md``).
  """
  fn = attacks.canonicalize_convolutions(bare_gradient(logits_fn))

  def loop(x, y):
    def body(_, x):
      return x + 1e-30 * fn(x, y)[1]

    return jax.lax.fori_loop(0, count, body, x)

  return loop


class BareGradient:
  """The reference: one jitted value-and-grad (the faster of as written and channels-last convs).

  Also timed: the same gradient ``LOOP`` times inside one compiled loop (`gradient_loop`), per
  gradient. A lone call pays dispatch and synchronisation, which on a GPU exceed a small model's
  compute; an attack's loop pays neither, so the in-loop time is the honest limit there.
  """

  LOOP = 20

  def __init__(self, logits_fn, x, y, calls: int = 2):
    fn = bare_gradient(logits_fn)
    self.x, self.y, self.calls = x, y, calls
    start = time.perf_counter()
    self.plain = jax.jit(fn).lower(x, y).compile()
    self.compile_s = time.perf_counter() - start
    self.channels_last = jax.jit(attacks.canonicalize_convolutions(fn)).lower(x, y).compile()
    self.loop = jax.jit(gradient_loop(logits_fn, self.LOOP)).lower(x, y).compile()
    self()
    self.looped()

  def __call__(self) -> tuple[float, float]:
    """(wall, CPU) seconds of the faster variant, each the best of ``calls`` calls."""
    variants = (self.plain, self.channels_last)
    return min(
      timed_both(lambda f=f: f(self.x, self.y)) for _ in range(self.calls) for f in variants
    )

  def looped(self) -> float:
    """Wall seconds per gradient inside the compiled loop."""
    return timed(lambda: self.loop(self.x, self.y)) / self.LOOP
