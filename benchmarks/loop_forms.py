"""Loop-form benchmark for a one-program DDN attack on XLA:CPU.

Question: why does a DDN-style loop whose body is a model input-gradient cost
~3x the bare jitted gradient per iteration under ``lax.scan`` on XLA:CPU, and
which loop form / setting gets the per-iteration cost back to ~1x while the
whole attack stays ONE XLA program?

Run (from the repository root)::

    python -m benchmarks.loop_forms --batch 1000 --steps 20
    python -m benchmarks.loop_forms --diagnose            # HLO evidence only (compiles, no timing)
    python -m benchmarks.loop_forms --variants all --batch 250 --steps 10
    python -m benchmarks.loop_forms --batch-sweep 50,100,250,500,1000
    python -m benchmarks.loop_forms --probe-flags --batch 250 --steps 5

Everything is self-contained: the Carlini-Wagner MNIST CNN is defined here with
flax.linen (random init, fixed seed), the images are real Fashion-MNIST test
images when the IDX file exists (else uniform noise), labels are the model's
own predictions (so the attack has something to flip).

Timing method (the machine is a shared 2-core CPU): every variant is compiled
ahead of time (compile time reported separately), then the variants are run
in rounds, the order rotated every round; in each round the reference
(``bare``: one jitted value_and_grad of the model on the same batch, called
from Python and blocked on) is timed too, and the variant's per-iteration time
is divided by that round's bare time.  The table shows the median over rounds
of that ratio, for wall-clock and for process CPU time (CPU time is much less
sensitive to other processes stealing the cores).

The key finding (see benchmarks/LOOP_FORMS.md): XLA:CPU's
``ConvCanonicalization`` pass only visits the *entry* computation, so the
input-gradient convolutions that ``jax.vjp`` emits (kernel dims ``01oi``,
i.e. in/out features swapped) stay non-canonical inside a while-loop body and
are lowered to naive "elemental" LLVM loop nests instead of the Eigen/library
convolution.  ``canonicalize_convs`` below rewrites every
``conv_general_dilated`` in a traced function to NHWC/HWIO/NHWC dimension
numbers with explicit transposes, which fixes it for every loop form.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

FASHION = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'


# --------------------------------------------------------------------------
# Model: Carlini-Wagner MNIST CNN
# --------------------------------------------------------------------------
class CWMnistCNN(nn.Module):
  """conv3x3(32)-conv(32)-pool-conv(64)-conv(64)-pool-fc200-fc200-fc10, ReLU, NHWC."""

  @nn.compact
  def __call__(self, x):
    for f in (32, 32):
      x = nn.relu(nn.Conv(f, (3, 3), padding='VALID')(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    for f in (64, 64):
      x = nn.relu(nn.Conv(f, (3, 3), padding='VALID')(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(200)(x))
    x = nn.relu(nn.Dense(200)(x))
    return nn.Dense(10)(x)


def nchw_apply(params, x_nhwc):
  """Same network and weights, but the convolutions run NCHW / OIHW (layout experiment)."""
  p = params['params']
  x = jnp.transpose(x_nhwc, (0, 3, 1, 2))
  dn = ('NCHW', 'OIHW', 'NCHW')

  def conv(x, name):
    k = jnp.transpose(p[name]['kernel'], (3, 2, 0, 1))  # HWIO -> OIHW
    y = lax.conv_general_dilated(x, k, (1, 1), 'VALID', dimension_numbers=dn)
    return jax.nn.relu(y + p[name]['bias'][None, :, None, None])

  def pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), 'VALID')

  x = pool(conv(conv(x, 'Conv_0'), 'Conv_1'))
  x = pool(conv(conv(x, 'Conv_2'), 'Conv_3'))
  x = jnp.transpose(x, (0, 2, 3, 1)).reshape(x.shape[0], -1)  # flatten in NHWC order like flax
  for name in ('Dense_0', 'Dense_1'):
    x = jax.nn.relu(x @ p[name]['kernel'] + p[name]['bias'])
  return x @ p['Dense_2']['kernel'] + p['Dense_2']['bias']


def load_images(batch: int, source: str) -> np.ndarray:
  if source == 'fashion' and os.path.exists(FASHION):
    with gzip.open(FASHION, 'rb') as f:
      raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    reps = -(-batch // raw.shape[0])
    return np.tile(raw, (reps, 1, 1, 1))[:batch].astype(np.float32) / 255.0
  rng = np.random.default_rng(0)
  return rng.uniform(0.0, 1.0, (batch, 28, 28, 1)).astype(np.float32)


# --------------------------------------------------------------------------
# The fix: rewrite every convolution to the layout XLA:CPU's library path wants
# --------------------------------------------------------------------------
def _canonical_conv(lhs, rhs, *, dimension_numbers, **params):
  """conv_general_dilated with NHWC/HWIO/NHWC dimension numbers + explicit transposes."""
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  n = len(lhs_spec)
  # jax ConvDimensionNumbers: lhs/out = (batch, feature, *spatial), rhs = (out_f, in_f, *spatial)
  p_lhs = (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])  # -> N, spatial..., C
  p_rhs = (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])  # -> spatial..., I, O
  p_out = (out_spec[0], *out_spec[2:], out_spec[1])
  ident = tuple(range(n))
  if p_lhs == ident and p_rhs == ident and p_out == ident:
    return lax.conv_general_dilated_p.bind(lhs, rhs, dimension_numbers=dimension_numbers, **params)
  canon = lax.ConvDimensionNumbers(
    lhs_spec=(0, n - 1, *range(1, n - 1)),
    rhs_spec=(n - 1, n - 2, *range(n - 2)),
    out_spec=(0, n - 1, *range(1, n - 1)),
  )
  out = lax.conv_general_dilated_p.bind(
    lax.transpose(lhs, p_lhs), lax.transpose(rhs, p_rhs), dimension_numbers=canon, **params
  )
  return lax.transpose(out, tuple(int(i) for i in np.argsort(p_out)))


# Call-like primitives whose body is inlined (so the convs inside get rewritten too).  Inlining
# `checkpoint`/`remat` inside an already-differentiated function only drops its CSE barrier.
_INLINE_CALLS = ('pjit', 'jit', 'closed_call', 'core_call', 'checkpoint', 'remat', 'remat2')


def _eval_canonical(jaxpr, consts, *args):
  """jax.core.eval_jaxpr, but convolutions are canonicalised and jit-calls inlined."""
  env: dict = {}

  def read(v):
    return v.val if isinstance(v, jcore.Literal) else env[v]

  for v, c in zip(jaxpr.constvars, consts):
    env[v] = c
  for v, a in zip(jaxpr.invars, args):
    env[v] = a
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    prim = eqn.primitive
    if prim is lax.conv_general_dilated_p:
      outs = [_canonical_conv(*invals, **eqn.params)]
    elif prim.name in _INLINE_CALLS and 'jaxpr' in eqn.params:
      sub = eqn.params['jaxpr']
      if isinstance(sub, jcore.ClosedJaxpr):
        outs = _eval_canonical(sub.jaxpr, sub.consts, *invals)
      else:
        outs = _eval_canonical(sub, (), *invals)
    else:
      # Other higher-order primitives (scan/cond/custom_*) are re-bound unchanged.
      with eqn.ctx.manager:
        outs = prim.bind(*invals, **prim.get_bind_params(eqn.params))
      if not prim.multiple_results:
        outs = [outs]
    for v, o in zip(eqn.outvars, outs):
      env[v] = o
  return [read(v) for v in jaxpr.outvars]


def canonicalize_convs(fun: Callable) -> Callable:
  """Same function, but every conv_general_dilated is NHWC/HWIO/NHWC (see module doc)."""

  def wrapped(*args):
    closed, out_shape = jax.make_jaxpr(fun, return_shape=True)(*args)
    outs = _eval_canonical(closed.jaxpr, closed.consts, *jax.tree_util.tree_leaves(args))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

  return wrapped


# --------------------------------------------------------------------------
# DDN step (Rony et al. 2019, Algorithm 1, untargeted, with quantisation)
# --------------------------------------------------------------------------
def make_vag(apply_fn, params, canon: bool, remat: bool = False):
  """x -> (loss, logits, dloss/dx) for the summed cross-entropy."""

  def ce(x, y):
    f = jax.checkpoint(apply_fn) if remat else apply_fn
    logits = f(params, x)
    loss = -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
    return loss, logits

  def vag(x, y):
    (loss, logits), g = jax.value_and_grad(ce, has_aux=True)(x, y)
    return loss, logits, g

  return canonicalize_convs(vag) if canon else vag


def _l2(v):
  return jnp.sqrt(jnp.sum(jnp.square(v.reshape(v.shape[0], -1)), axis=1))


def _bc(s, like):
  return s.reshape((-1,) + (1,) * (like.ndim - 1))


def ddn_init(x):
  b = x.shape[0]
  return {
    'k': jnp.zeros((), jnp.int32),
    'delta': jnp.zeros_like(x),
    'eps': jnp.ones((b,), x.dtype),
    'best_norm': jnp.full((b,), jnp.inf, x.dtype),
    'best_delta': jnp.zeros_like(x),
  }


def ddn_step(vag, x, y, c, *, steps, gamma=0.05, alpha0=1.0, alpha_min=0.01):
  k = c['k']
  alpha = alpha_min + 0.5 * (alpha0 - alpha_min) * (
    1.0 + jnp.cos(jnp.pi * k.astype(x.dtype) / steps)
  )
  x_adv = x + c['delta']
  _, logits, g = vag(x_adv, y)
  is_adv = jnp.argmax(logits, axis=1) != y
  norm = _l2(c['delta'])
  better = is_adv & (norm < c['best_norm'])
  best_norm = jnp.where(better, norm, c['best_norm'])
  best_delta = jnp.where(_bc(better, x), c['delta'], c['best_delta'])
  g = g / _bc(jnp.maximum(_l2(g), 1e-12), g)  # untargeted: ascend the CE
  delta = c['delta'] + alpha * g
  eps = jnp.where(is_adv, (1.0 - gamma) * c['eps'], (1.0 + gamma) * c['eps'])
  delta = delta * _bc(eps / jnp.maximum(_l2(delta), 1e-12), delta)  # project on eps-sphere
  x_new = jnp.round(jnp.clip(x + delta, 0.0, 1.0) * 255.0) / 255.0  # clip + quantise
  return {
    'k': k + 1,
    'delta': x_new - x,
    'eps': eps,
    'best_norm': best_norm,
    'best_delta': best_delta,
  }


# --------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------
def build_program(form: str, vag, steps: int, unroll: int | bool = 1, chunk: int = 5):
  """Return f(x, y) -> carry: the whole attack as one jitted program."""
  step = partial(ddn_step, vag, steps=steps)

  def run(x, y):
    c0 = ddn_init(x)
    body = lambda c: step(x, y, c)
    if form == 'scan':
      return lax.scan(lambda c, _: (body(c), None), c0, None, length=steps, unroll=unroll)[0]
    if form == 'fori':
      return lax.fori_loop(0, steps, lambda i, c: body(c), c0)
    if form == 'while':
      return lax.while_loop(lambda c: c['k'] < steps, body, c0)
    if form == 'chunked':  # outer scan over python-unrolled chunks of `chunk` steps

      def chunk_body(c, _):
        for _i in range(chunk):
          c = body(c)
        return c, None

      c = lax.scan(chunk_body, c0, None, length=steps // chunk)[0]
      for _i in range(steps % chunk):
        c = body(c)
      return c
    raise ValueError(form)

  return run


# name -> (kind, form, canon, extra)
def variant_table(steps: int) -> dict[str, dict[str, Any]]:
  t: dict[str, dict[str, Any]] = {
    'bare': {'kind': 'bare'},  # reference: jitted value_and_grad, called from Python
    'step_py': {'kind': 'step_py', 'canon': False},  # jitted DDN step driven from Python
    'step_py_canon': {'kind': 'step_py', 'canon': True},
  }
  for canon in (False, True):
    sfx = '_canon' if canon else ''
    t['scan' + sfx] = {'kind': 'prog', 'form': 'scan', 'canon': canon, 'unroll': 1}
    for u in (2, 5, 10):
      t[f'scan_u{u}' + sfx] = {'kind': 'prog', 'form': 'scan', 'canon': canon, 'unroll': u}
    t['scan_full' + sfx] = {'kind': 'prog', 'form': 'scan', 'canon': canon, 'unroll': True}
    t['chunked5' + sfx] = {'kind': 'prog', 'form': 'chunked', 'canon': canon, 'chunk': 5}
    t['fori' + sfx] = {'kind': 'prog', 'form': 'fori', 'canon': canon}
    t['while' + sfx] = {'kind': 'prog', 'form': 'while', 'canon': canon}
  t['scan_remat_canon'] = {
    'kind': 'prog',
    'form': 'scan',
    'canon': True,
    'unroll': 1,
    'remat': True,
  }
  t['scan_nchw'] = {'kind': 'prog', 'form': 'scan', 'canon': False, 'unroll': 1, 'nchw': True}
  t['scan_nchw_canon'] = {'kind': 'prog', 'form': 'scan', 'canon': True, 'unroll': 1, 'nchw': True}
  t['bare_nchw'] = {'kind': 'bare', 'nchw': True}
  return t


CORE = ['bare', 'step_py', 'scan', 'scan_full', 'scan_canon', 'while_canon']


class Runner:
  def __init__(self, args, compiler_options=None):
    self.args = args
    self.copts = compiler_options or {}
    self.model = CWMnistCNN()
    self.params = self.model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    self.flax_apply = lambda p, x: self.model.apply(p, x)

  def data(self, batch):
    x = jnp.asarray(load_images(batch, self.args.data))
    y = jnp.argmax(jax.jit(self.flax_apply)(self.params, x), axis=1)
    return x, y

  def apply_fn(self, spec):
    return nchw_apply if spec.get('nchw') else self.flax_apply

  def compile(self, name, spec, x, y, steps):
    """AOT-compile; return (callable, n_iterations_per_call, compile_seconds)."""
    vag = make_vag(
      self.apply_fn(spec), self.params, spec.get('canon', False), spec.get('remat', False)
    )
    t0 = time.perf_counter()
    if spec['kind'] == 'bare':
      c = jax.jit(vag).lower(x, y).compile(compiler_options=self.copts)
      fn = lambda: c(x, y)
      n = 1
    elif spec['kind'] == 'step_py':
      st = jax.jit(partial(ddn_step, vag, steps=steps), donate_argnums=(2,))
      c = st.lower(x, y, ddn_init(x)).compile(compiler_options=self.copts)

      def fn():
        carry = ddn_init(x)
        for _ in range(steps):
          carry = c(x, y, carry)
        return carry

      n = steps
    else:
      prog = build_program(spec['form'], vag, steps, spec.get('unroll', 1), spec.get('chunk', 5))
      c = jax.jit(prog).lower(x, y).compile(compiler_options=self.copts)
      fn = lambda: c(x, y)
      n = steps
    return fn, n, time.perf_counter() - t0, c


def timed(fn):
  """(wall s, process CPU s, of which kernel/system s)."""
  o0, t0 = os.times(), time.perf_counter()
  jax.block_until_ready(fn())
  o1, t1 = os.times(), time.perf_counter()
  return t1 - t0, (o1.user - o0.user) + (o1.system - o0.system), o1.system - o0.system


def bench(runner: Runner, names, batch, steps, rounds, slow_steps, out=print):
  x, y = runner.data(batch)
  table = variant_table(steps)
  comp, _per = {}, {}
  for name in names:
    spec = table[name]
    st = steps
    if (
      slow_steps
      and spec['kind'] != 'bare'
      and not spec.get('canon')
      and spec.get('unroll', 1) is not True
    ):
      st = min(slow_steps, steps)  # non-canonical loop bodies are ~3x slower: run fewer iterations
    fn, n, ct, _ = runner.compile(name, spec, x, y, st)
    comp[name] = (fn, n, ct)
    out(f'  compiled {name:18s} {ct:6.1f}s  ({n} iters/call)')
    sys.stdout.flush()
  # warm-up: bare / python-driven references a couple of calls; whole programs only with
  # --warmup (they are AOT-compiled already; medians over rounds absorb first-run effects)
  for name, (fn, n, _) in comp.items():
    if n == 1 or runner.args.warmup:
      for _ in range(2 if n == 1 else 1):
        jax.block_until_ready(fn())
  wall = {k: [] for k in comp}
  cpu = {k: [] for k in comp}
  sys_ = {k: [] for k in comp}
  order = list(comp)
  for r in range(rounds):
    order = order[1:] + order[:1]
    for name in order:
      fn, n, _ = comp[name]
      if n == 1:  # bare: several blocked calls, median
        ws, cs, ss = zip(*[timed(fn) for _ in range(runner.args.bare_calls)])
        w, c, sy = statistics.median(ws), statistics.median(cs), statistics.median(ss)
      else:
        w, c, sy = timed(fn)
        w, c, sy = w / n, c / n, sy / n
      wall[name].append(w)
      cpu[name].append(c)
      sys_[name].append(sy)
    out(f'  round {r + 1}/{rounds}: bare {wall.get("bare", [0])[-1] * 1e3:.0f} ms/grad')
    sys.stdout.flush()
  ref = 'bare'
  rows = []
  for name in comp:
    rw = [a / b for a, b in zip(wall[name], wall[ref])]
    rc = [a / b for a, b in zip(cpu[name], cpu[ref])]
    rows.append(
      (
        name,
        comp[name][1],
        comp[name][2],
        statistics.median(wall[name]),
        statistics.median(rw),
        statistics.median(rc),
        min(rw),
        statistics.median(cpu[name]),
        statistics.median(sys_[name]),
      )
    )
  return rows


def print_table(rows, out=print):
  out(
    '| variant | iters/call | compile s | wall ms/iter | wall ratio (median) | CPU-time ratio (median) '
    '| wall ratio (min) | CPU ms/iter (of which sys) |'
  )
  out('|---|---:|---:|---:|---:|---:|---:|---:|')
  for name, n, ct, w, rw, rc, mn, c, sy in rows:
    out(
      f'| {name} | {n} | {ct:.1f} | {w * 1e3:.0f} | {rw:.2f} | {rc:.2f} | {mn:.2f} | {c * 1e3:.0f} ({sy * 1e3:.0f}) |'
    )


# --------------------------------------------------------------------------
# Diagnosis from the compiled HLO + the XLA dump
# --------------------------------------------------------------------------
def hlo_conv_report(txt: str):
  """(computation, in_while_body, shape, dim_labels) for every convolution in the optimized HLO."""
  comps, calls, comp = {}, {}, None
  for line in txt.splitlines():
    m = re.match(r'^(ENTRY )?%?([\w.\-]+) .*\{\s*$', line)
    if m and not line.startswith(' '):
      comp = m.group(2)
      comps[comp] = []
      calls[comp] = set()
      continue
    if comp is None:
      continue
    calls[comp].update(
      re.findall(r'(?:calls|body|condition|to_apply|branch_computations)=\{?%([\w.\-]+)', line)
    )
    if ' convolution(' in line:
      dl = re.search(r'dim_labels=(\S+?)[,\s]', line)
      shp = re.search(r'= (f32\[[^\]]*\])', line)
      comps[comp].append((shp.group(1) if shp else '?', dl.group(1) if dl else '?'))
  in_body, todo = set(), []
  for line in txt.splitlines():
    todo += re.findall(r'body=%([\w.\-]+)', line)
  while todo:
    c = todo.pop()
    if c not in in_body:
      in_body.add(c)
      todo += list(calls.get(c, ()))
  return [(c, c in in_body, shp, dl) for c, lst in comps.items() for shp, dl in lst]


def dump_compile(runner, name, spec, x, y, steps, extra_opts=None):
  d = tempfile.mkdtemp(prefix='loopforms_dump_')
  opts = dict(runner.copts)
  opts.update(extra_opts or {})
  opts.update({'xla_dump_to': d, 'xla_dump_hlo_module_re': 'jit_.*'})
  saved = runner.copts
  runner.copts = opts
  try:
    _, _, _, c = runner.compile(name, spec, x, y, steps)
  finally:
    runner.copts = saved
  files = os.listdir(d)
  elemental = sorted(
    {
      re.sub(r'\.ir-(no|with)-opt\.ll$', '', f.split('.', 2)[-1])
      for f in files
      if 'elemental_kernel_module' in f and f.endswith('.ll')
    }
  )
  return c.as_text(), elemental, d


def diagnose(runner, args, out=print):
  x, y = runner.data(args.diag_batch)
  table = variant_table(4)
  out(f'### HLO evidence (batch {args.diag_batch}, 4 steps)\n')
  for name in [
    'bare',
    'scan',
    'scan_full',
    'scan_u2',
    'while',
    'scan_canon',
    'scan_nchw',
    'scan_nchw_canon',
  ]:
    spec = dict(table[name])
    if spec['kind'] == 'bare':
      spec = dict(spec)
    txt, elem, d = dump_compile(runner, name, spec, x, y, 4)
    convs = hlo_conv_report(txt)
    n_while = len(re.findall(r' while\(', txt))
    out(
      f'- **{name}**: {len(convs)} convolution HLOs, {n_while} while loop(s); '
      f'convs lowered as naive elemental kernels: {len(elem)}'
      + (f' (e.g. `{elem[0]}`)' if elem else '')
    )
    kinds = {}
    for comp, body, shp, dl in convs:
      kinds.setdefault(('while body' if body else 'outside loop', dl), []).append(shp)
    for (where, dl), shapes in sorted(kinds.items()):
      out(f'    - {where:12s} dim_labels={dl:18s} x{len(shapes)}  e.g. {shapes[0]}')
    if args.keep_dumps:
      out(f'    - dump: {d}')


def probe_flags(args, out=print):
  """Per-compile XLA:CPU options (jax .compile(compiler_options=...)) on the plain scan."""
  probes = [
    {},
    {'xla_cpu_multi_thread_eigen': False},
    {'xla_cpu_use_onednn': True},
    {'xla_cpu_experimental_onednn_custom_call': True},
    {'xla_cpu_use_xnnpack': False},
    {'xla_cpu_experimental_ynn_fusion_type': 'LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION'},
    {'xla_cpu_experimental_xnn_graph_fusion_mode': 'XNN_GRAPH_FUSION_MODE_GREEDY'},
    {'xla_cpu_enable_fast_math': True},
    {'xla_cpu_opt_preset': 'CPU_OPT_PRESET_FAST_RUNTIME'},
    {'xla_cpu_copy_insertion_use_region_analysis': True},
  ]
  rows = []
  for opts in probes:
    r = Runner(args, opts)
    x, y = r.data(args.batch)
    label = ','.join(f'{k}={v}' for k, v in opts.items()) or '(defaults)'
    try:
      _, elem, _ = dump_compile(r, 'scan', variant_table(4)['scan'], x, y, 4)
      res = bench(r, ['bare', 'scan'], args.batch, args.steps, args.rounds, 0, out=lambda *a: None)
    except Exception as e:  # noqa: BLE001 (an option this jaxlib rejects is recorded)
      out(f'| `{label}` | error: {str(e).splitlines()[0][:120]} |')
      continue
    d = {row[0]: row for row in res}
    rows.append(label)
    out(
      f'| `{label}` | {len(elem)} | {d["bare"][3] * 1e3:.0f} | {d["scan"][4]:.2f} | {d["scan"][5]:.2f} |'
    )
    sys.stdout.flush()


def batch_sweep(runner, args, out=print):
  out(
    '| batch | bare ms/grad | bare sys-CPU ms | scan ms/iter | scan_canon ms/iter | scan - bare (ms) '
    '| scan/bare | scan_canon/bare | scan_canon sys-CPU ms/iter |'
  )
  out('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for b in [int(s) for s in args.batch_sweep.split(',')]:
    rows = bench(
      runner, ['bare', 'scan', 'scan_canon'], b, args.steps, args.rounds, 0, out=lambda *a: None
    )
    d = {r[0]: r for r in rows}
    tb, ts, tc = d['bare'][3], d['scan'][3], d['scan_canon'][3]
    out(
      f'| {b} | {tb * 1e3:.1f} | {d["bare"][8] * 1e3:.1f} | {ts * 1e3:.1f} | {tc * 1e3:.1f} | '
      f'{(ts - tb) * 1e3:.1f} | {d["scan"][4]:.2f} | {d["scan_canon"][4]:.2f} | {d["scan_canon"][8] * 1e3:.1f} |'
    )
    sys.stdout.flush()


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--batch', type=int, default=1000)
  ap.add_argument('--steps', type=int, default=20)
  ap.add_argument('--rounds', type=int, default=2)
  ap.add_argument('--bare-calls', type=int, default=3, help='blocked bare calls per round (median)')
  ap.add_argument(
    '--slow-steps',
    type=int,
    default=5,
    help='iterations for the (known ~3x slow) non-canonical looped variants; 0 = --steps',
  )
  ap.add_argument('--variants', default='core', help="comma list, 'core' or 'all'")
  ap.add_argument('--data', choices=['fashion', 'uniform'], default='fashion')
  ap.add_argument('--diagnose', action='store_true', help='print HLO/dump evidence (compile only)')
  ap.add_argument('--diag-batch', type=int, default=100)
  ap.add_argument('--keep-dumps', action='store_true')
  ap.add_argument('--probe-flags', action='store_true')
  ap.add_argument('--batch-sweep', default='')
  ap.add_argument(
    '--warmup',
    action='store_true',
    help='also run each multi-step program once before timing (slower)',
  )
  args = ap.parse_args(argv)

  print(
    f'jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs, '
    f'LD_PRELOAD={os.environ.get("LD_PRELOAD", "") or "(glibc malloc)"}, '
    f'XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}'
  )
  runner = Runner(args)
  if args.diagnose:
    diagnose(runner, args)
    return
  if args.probe_flags:
    print(
      f'\n### XLA:CPU options on plain `lax.scan` (batch {args.batch}, {args.steps} steps, '
      f'{args.rounds} rounds)\n'
    )
    print('| compiler option | elemental conv kernels | bare ms | scan/bare wall | scan/bare CPU |')
    print('|---|---:|---:|---:|---:|')
    probe_flags(args)
    return
  if args.batch_sweep:
    print(f'\n### batch sweep ({args.steps} steps, {args.rounds} rounds)\n')
    batch_sweep(runner, args)
    return
  table = variant_table(args.steps)
  if args.variants == 'core':
    names = CORE
  elif args.variants == 'all':
    names = [n for n in table]
  else:
    names = ['bare'] + [n for n in args.variants.split(',') if n and n != 'bare']
  unknown = [n for n in names if n not in table]
  if unknown:
    ap.error(f'unknown variants {unknown}; known: {sorted(table)}')
  print(
    f'\nbatch {args.batch}, steps {args.steps} (slow non-canonical loops: '
    f'{args.slow_steps or args.steps}), rounds {args.rounds}, data {args.data}'
  )
  rows = bench(runner, names, args.batch, args.steps, args.rounds, args.slow_steps)
  print()
  print_table(rows)


if __name__ == '__main__':
  main()
