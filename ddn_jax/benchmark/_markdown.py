"""The benchmark's markdown report, written next to its JSON."""

from __future__ import annotations

from typing import Any

from ddn_jax.benchmark._timing import BareGradient


def _fmt(v, spec='.3g') -> str:
  if v is None:
    return '–'
  if isinstance(v, float):
    return format(v, spec)
  return str(v)


def _ms(seconds, spec) -> str:
  return '–' if seconds is None else format(seconds * 1e3, spec)


def _mib(v) -> str:
  return '–' if v is None else f'{v / 2**20:.0f}'


def _si(v: float) -> str:
  for unit, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6)):
    if v >= scale:
      return f'{v / scale:.3g} {unit}'
  return f'{v:.3g} '


def _rate(r: dict[str, Any] | None) -> str:
  """``'58.1 G (31.2%)'``: FLOP/s and its fraction of the peak (– where unknown)."""
  if not r or r.get('flops_per_s') is None:
    return '–'
  fraction = r.get('fraction_of_peak')
  percent = '–' if fraction is None else f'{100 * fraction:.3g}%'
  return f'{_si(r["flops_per_s"])} ({percent})'


def _peak_lines(result: dict[str, Any]) -> list[str]:
  peak = result.get('peak')
  if not peak:
    return []
  value = '**unknown**' if peak['flops_per_s'] is None else f'**{_si(peak["flops_per_s"])}FLOP/s**'
  what = f'{peak["precision"]}, computed as {peak["compute_precision"]} on {peak["device"]}'
  lines = [
    (
      f"- Peak for the run's precision ({what}): {value}; {peak['source']}. *FLOP/s (% of "
      "peak)* in the tables: the model's counted FLOPs over the time, and their fraction of it."
    )
  ]
  for name, f in result.get('model_flops', {}).items():
    lines.append(
      f'- {name} FLOPs per image: forward {_si(f["forward"])}, input gradient '
      f'{_si(f["input_gradient"])} ({f["input_gradient"] / f["forward"]:.2f}× the forward; '
      f'{f["method"]}).'
    )
  return lines


def to_markdown(result: dict[str, Any]) -> str:
  """The report of a `run` result: one table per section."""
  m, p = result['machine'], result['preset']
  lines = [
    f'# Benchmark results: {result["tag"]}',
    '',
    (
      f'`{result["command"]}` — preset `{result["preset_name"]}`, {result["date"]}, '
      f'{result["total_s"] / 60:.1f} min'
      + ('.' if result['complete'] else ' (**incomplete: the run was cut short**).')
    ),
    '',
    f'- Machine: {m["cpu"]}, {m.get("logical_cpus", m.get("cores"))} logical cores; JAX backend `{m["backend"]}` '
    f'({m["device"]} × {m["num_devices"]}); PyTorch threads: {m.get("torch_threads")}; '
    f'XLA_FLAGS: `{m["xla_flags"] or ""}`; allocator: {m["allocator"]}'
    + (f' (`MALLOC_CONF={m["malloc_conf"]}`)' if m['malloc_conf'] else '')
    + '.',
    '- Versions: ' + ', '.join(f'{k} {v}' for k, v in m['versions'].items() if v) + '.',
    f'- Load average (1/5/15 min): start {result["load_start"]}, end {result["load_end"]}.',
  ]
  if m.get('gpu'):
    g = m['gpu']
    lines.append(
      f'- GPU: PyTorch (adv-lib and the gradient reference) on {g.get("torch_device") or "CPU"}; '
      f'float32 precision: JAX `jax_default_matmul_precision={g["jax_default_matmul_precision"]}` '
      '(XLA may use TF32 for convolutions and dots), PyTorch '
      f'`cudnn.allow_tf32={g.get("torch_cudnn_allow_tf32")}`, '
      f'`float32_matmul_precision={g.get("torch_float32_matmul_precision")}`; '
      f'`XLA_PYTHON_CLIENT_MEM_FRACTION={g["xla_python_client_mem_fraction"]}`.'
    )
  lines += _peak_lines(result)
  lines += [f'- {note}' for note in result['notes']]
  lines += ['', '## Model gradient: JAX vs PyTorch (same network and weights)', '']
  lines += [
    (
      'One jitted value-and-grad of the summed cross-entropy w.r.t. the input vs PyTorch '
      'forward+backward; medians, alternating. `jax/torch` uses the faster JAX variant. *In loop*: '
      f'per gradient, {BareGradient.LOOP} dependent gradients in one compiled loop (no per-call '
      "dispatch or synchronisation, as inside an attack). FLOP/s: the input gradient's FLOPs "
      '× batch / time (JAX: the faster lone call).'
    ),
    '',
    (
      '| model | batch | JAX (ms) | JAX channels-last (ms) | JAX in loop (ms) | PyTorch (ms) | '
      'JAX / PyTorch | JAX / PyTorch, CPU time | compile (s) | JAX FLOP/s (% of peak) | '
      'in loop FLOP/s (% of peak) | PyTorch FLOP/s (% of peak) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for g in result['gradient']:
    lines.append(
      f'| {g["model"]} | {g["batch"]} | {g["jax_s"] * 1e3:.1f} | '
      f'{g["jax_channels_last_s"] * 1e3:.1f} | {_ms(g.get("jax_in_loop_s"), ".1f")} | '
      f'{_fmt(g.get("torch_s") and g["torch_s"] * 1e3, ".1f")}'
      f' | {_fmt(g.get("jax_over_torch"), ".2f")} | {_fmt(g.get("jax_over_torch_cpu"), ".2f")} | '
      f'{g["compile_s"]:.1f} | '
      + ' | '.join(_rate(g.get('flop_rates', {}).get(k)) for k in ('jax', 'jax_in_loop', 'torch'))
      + ' |'
    )
  lines += ['', '## Attacks, side by side', '']
  lines += [
    (
      f'Median of {p["repeats"]} timed rounds after {p["warmup"]} warm-up round(s); implementations '
      'alternate within each round. *Overhead* = time / (mean gradient evaluations per example × '
      'one bare jitted gradient on the same batch, timed in the same rounds); *vs in-loop* uses '
      'the in-loop gradient time instead (see above); for attacks whose '
      'examples stop early, *per loop iteration* divides by the iterations the batched loop ran '
      'instead. *Ratio* = time / ddn_jax time in the same round (median). Compile time: ddn_jax '
      'ahead-of-time compilation, not included in the time. *FLOP/s* = gradient evaluations × '
      "the input gradient's FLOPs / time, a lower bound (forward passes outside the counted "
      "gradients are not counted; DeepFool's backward passes share one forward per step); "
      '*bare gradient in loop*: the same for the in-loop gradient timed in the same rounds.'
    ),
    '',
    (
      '| model | attack | batch | implementation | s / 1000 images | grads / example | overhead '
      '| overhead vs in-loop | overhead, CPU time | per loop iteration | FLOP/s (% of peak) '
      '| bare gradient in loop, FLOP/s (% of peak) | ratio vs ddn_jax '
      '| CPU-time ratio | compile (s) | success | median L2 |'
    ),
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for a in result['attacks']:
    for impl, r in a['results'].items():
      lines.append(
        f'| {a["model"]} | {a["attack"]} | {a["batch"]} | {impl} | {r["s_per_1000_images"]:.1f} | '
        f'{r["grads_per_example"]:.1f} | {_fmt(r.get("overhead"), ".3f")} | '
        f'{_fmt(r.get("overhead_vs_loop"), ".3f")} | '
        f'{_fmt(r.get("overhead_cpu_time"), ".3f")} | '
        f'{_fmt(r.get("overhead_per_loop_iteration"), ".3f")} | {_rate(r)} | '
        f'{_rate(a.get("bare_grad_in_loop"))} | '
        f'{_fmt(r.get("time_ratio_vs_ddn_jax"), ".2f")} | '
        f'{_fmt(r.get("cpu_time_ratio_vs_ddn_jax"), ".2f")} | {_fmt(r["compile_s"], ".1f")} | '
        f'{r["success_rate"]:.0%} | {_fmt(r["median_l2"], ".3f")} |'
      )
    for impl, e in a['errors'].items():
      lines.append(f'| {a["model"]} | {a["attack"]} | {a["batch"]} | {impl} | error: `{e}` |')
  lines += ['', '## Scaling with the batch (DDN, fresh process per point)', '']
  lines += [
    (
      'Peak RSS is the whole process (Python, JAX, data, compiled programs); its growth is from '
      "after loading the model and data to the end; XLA temp is the compiled DDN program's "
      "scratch memory (`memory_analysis()`); on GPU, the device's peak. FLOP/s: DDN's "
      "gradients (steps × batch × the input gradient's FLOPs) / its time, and the bare gradient "
      'in its compiled loop.'
    ),
  ]
  header = [
    '',
    (
      '| model | batch | steps | bare grad (ms) | in loop (ms) | DDN (s) | s / 1000 images | '
      'overhead | vs in-loop | compile (s) | peak RSS (MiB) | peak RSS growth (MiB) | '
      'XLA temp (MiB) | device peak (MiB) | DDN FLOP/s (% of peak) | '
      'bare gradient in loop, FLOP/s (% of peak) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for section in ('scaling_batch', 'scaling_steps'):
    if section == 'scaling_steps':
      lines += ['', '## Scaling with the steps (DDN, fresh process per point)']
    lines += header
    for s in result[section]:
      if 'error' in s:
        lines.append(f'| {s["model"]} | {s["batch"]} | {s["steps"]} | error: `{s["error"]}` |')
        continue
      lines.append(
        f'| {s["model"]} | {s["batch"]} | {s["steps"]} | {s["bare_grad_s"] * 1e3:.2f} | '
        f'{_ms(s.get("bare_grad_in_loop_s"), ".2f")} | {s["ddn_s"]:.3f} | '
        f'{s["ddn_s_per_1000_images"]:.2f} | {s["overhead"]:.3f} | '
        f'{_fmt(s.get("overhead_vs_loop"), ".3f")} | '
        f'{s["ddn_compile_s"]:.1f} | {_mib(s["peak_rss_bytes"])} | '
        f'{_mib(s["peak_rss_bytes"] - s["rss_before_bytes"])} | {_mib(s["ddn_temp_bytes"])} | '
        f'{_mib(s.get("device_peak_bytes"))} | {_rate(s.get("ddn"))} | '
        f'{_rate(s.get("bare_grad_in_loop"))} |'
      )
  sw = result['sweep']
  lines += ['', '## Hyperparameter sweep: G gamma values vmapped vs G separate runs', '']
  if 'error' in sw:
    lines.append(f'error: `{sw["error"]}`')
  else:
    lines += [
      (
        f'DDN-{sw["steps"]} on {sw["batch"]} images, G = {sw["points"]} values of gamma. '
        f'One program, `jax.vmap` of `attacks.ddn` over gamma in one `jit`: {sw["vmapped_s"]:.2f} s '
        f'(compile {sw["compile_s"]["vmapped"]:.1f} s); {sw["points"]} separate runs of one '
        f'compiled DDN: {sw["separate_s"]:.2f} s (compile {sw["compile_s"]["separate"]:.1f} s); '
        f'separate / vmapped = **{sw["separate_over_vmapped"]:.2f}**. The vmapped program: '
        f'{_rate(sw.get("vmapped"))} FLOP/s (% of peak), counting its G × steps × batch gradients.'
      )
    ]
    if sw.get('evaluation_sweep_s') is not None:
      lines[-1] += (
        f' `ddn_jax.evaluation.sweep` end to end (input checks and per-point validation '
        f'included): {sw["evaluation_sweep_s"]:.2f} s, '
        f'{sw["evaluation_sweep_over_vmapped"]:.2f}× the bare vmapped program.'
      )
  if 'compaction' in result:  # Results recorded before the section existed have none.
    lines += _compaction(result['compaction'])
  if 'persist' in result and 'not run' not in result['persist'].get('error', ''):
    lines += _persist(result['persist'])
  if result.get('distributed'):
    lines += _distributed(result['distributed'])
  return '\n'.join(lines) + '\n'


def _persist(p: dict[str, Any]) -> list[str]:
  lines = ['', '## Cost of persisting batches for resume', '']
  if 'error' in p:
    return [*lines, f'error: `{p["error"]}`']
  return [
    *lines,
    (
      f'`evaluation.evaluate_attack` of DDN-{p["steps"]} on {p["images"]} images in '
      f'{p["batches"]} batches of {p["batch"]}, without and with a fresh `resume_dir` (each batch '
      f'written atomically and fsynced), alternating, medians of {p["rounds"]} rounds: '
      f'{p["plain_s"]:.2f} s vs {p["persisted_s"]:.2f} s; persisted / plain = '
      f'**{p["persisted_over_plain"]:.3f}**.'
    ),
  ]


def _distributed(rows: list[dict[str, Any]]) -> list[str]:
  lines = [
    '',
    '## Devices and processes (DDN evaluation and a gamma sweep, fresh processes per point)',
    '',
    (
      "Speedup: one device's time / this one's; efficiency: speedup / devices. Forced CPU "
      'devices and processes on one machine share its cores: past the number of cores, '
      'efficiency falls by construction; this measures the overhead of sharding and collectives, '
      'not the scaling of a pod.'
    ),
    '',
    (
      '| processes | devices per process | devices | rounds | evaluate (s) | speedup | efficiency '
      '| first call (s) | sweep (s) | speedup | efficiency | first call (s) |'
    ),
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    head = f'| {r["processes"]} | {r["devices_per_process"]} | {r["devices"]} | {r["rounds"]} |'
    if 'error' in r:
      lines.append(f'{head} error: `{r["error"]}` |')
      continue
    cells = [
      _fmt(r.get(f'{name}{key}'), spec)
      for name in ('evaluate', 'sweep')
      for key, spec in (
        ('_s', '.2f'),
        ('_speedup', '.2f'),
        ('_efficiency', '.2f'),
        ('_first_s', '.1f'),
      )
    ]
    lines.append(f'{head} {" | ".join(cells)} |')
  return lines


def _compaction(rows: list[dict[str, Any]]) -> list[str]:
  lines = ['', '## Compacting loops: finished examples dropped or not', '']
  lines += [
    (
      'Median of the timed rounds after a warm-up, alternating. *Plain*: the vmapped while loop, '
      'which runs every row until the last example stops (`jax.vmap` of the attack on one '
      'example at a time); *compacting*: the attack as called, whose loop goes on with the '
      'examples still running in smaller batches (`compacting_while_loop`). The two must spend '
      'the same gradients and find the same points: *same grads* is the share of examples with '
      'equal gradient counts, *max point difference* the largest pixel difference among them. '
      "FLOP/s: the gradients the examples needed × the input gradient's FLOPs / time (the plain "
      'loop computes more, for examples already stopped, which is not counted).'
    ),
    '',
    (
      '| attack | batch | grads / example (mean, max) | plain (s) | compacting (s) | speed-up | '
      'compile plain / compacting (s) | same grads | max point difference | '
      'plain FLOP/s (% of peak) | compacting FLOP/s (% of peak) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for r in rows:
    if 'error' in r:
      lines.append(f'| {r["attack"]} | {r["batch"]} | error: `{r["error"]}` |')
      continue
    lines.append(
      f'| {r["attack"]} | {r["batch"]} | {r["grads_mean"]:.1f}, {r["grads_max"]} | '
      f'{r["plain_s"]:.3f} | {r["compacting_s"]:.3f} | **{r["speedup"]:.2f}×** | '
      f'{r["plain_compile_s"]:.1f} / {r["compacting_compile_s"]:.1f} | '
      f'{r["same_num_grads"]:.0%} | {_fmt(r["max_adv_difference"], ".1e")} | '
      f'{_rate(r.get("plain"))} | {_rate(r.get("compacting"))} |'
    )
  return lines
