"""The benchmark's FLOP counts, peaks and FLOP/s (`ddn_jax.benchmark`, ``_flops``).

The model counts are checked against an analytic count of SmallCNN's layers, the peak lookup on
device kinds, and the rates and their markdown on a result whose numbers are exact by design.
"""

import copy
import json
import pathlib

import jax
import pytest

from ddn_jax import benchmark, models
from ddn_jax.benchmark import _setup

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _small_cnn_counts(h=28, w=28, c=1):
  """SmallCNN's multiply-accumulates and activation elements per image, layer by layer."""
  macs = activations = 0
  for features in (32, 32, None, 64, 64, None):  # 3x3 VALID convolutions and 2x2 max-pools.
    if features is None:
      h, w = h // 2, w // 2
    else:
      h, w = h - 2, w - 2
      macs += h * w * features * 3 * 3 * c
      c = features
    activations += h * w * c
  inputs = h * w * c
  for features in (200, 200, 10):
    macs += inputs * features
    inputs = features
    activations += features
  return macs, activations


def test_small_cnn_flops_match_an_analytic_count():
  """XLA's counts against 2 FLOPs per multiply-accumulate of the convolutions and dense layers.

  Forward: ``2 M`` (M the MACs), plus elementwise work on the A activations (bias, ReLU, pooling
  compares, softmax): at most 10 FLOPs per activation element. Input gradient: the forward, then
  per layer one transposed product w.r.t. the layer's input with the same MACs (each forward
  w·x gives one w·δ; XLA counts only the taps inside the input, so a transposed VALID
  convolution counts exactly the forward's), so ``4 M``; no weight gradients (they would add
  about ``2 M`` more); and at most 10 more elementwise FLOPs per activation for the ReLU masks,
  the pooling scatter and the loss. A dropped backward pass (``G = F``), weight gradients or a
  missing division by the batch all fall outside these bounds.
  """
  macs, activations = _small_cnn_counts()
  model = models.SmallCNN()
  variables = model.init(jax.random.key(0), jax.numpy.zeros((1, 28, 28, 1)))
  counted = benchmark.model_flops(models.make_logits_fn(model, variables), (28, 28, 1), batch=3)
  assert 2 * macs <= counted['forward'] <= 2 * macs + 10 * activations
  assert 4 * macs <= counted['input_gradient'] <= 4 * macs + 20 * activations
  assert counted['num_classes'] == 10


H100 = 'NVIDIA H100 80GB HBM3'


@pytest.mark.parametrize(
  ('kind', 'backend', 'matmul', 'precision', 'compute', 'peak'),
  [
    # float32 on a GPU runs at TF32 unless jax_default_matmul_precision asks for more.
    (H100, 'gpu', None, 'float32', 'tf32', 494.7e12),
    (H100, 'gpu', 'highest', 'float32', 'float32', 66.9e12),
    (H100, 'gpu', None, 'bfloat16', 'bfloat16', 989.4e12),
    ('NVIDIA H200', 'gpu', None, 'float32', 'tf32', 494.7e12),
    ('NVIDIA A100-SXM4-40GB', 'gpu', None, 'bfloat16', 'bfloat16', 312e12),
    # float32 products on a TPU are bfloat16 passes by default.
    ('TPU v5 lite', 'tpu', None, 'float32', 'bfloat16', 197e12),
    ('TPU v4', 'tpu', None, 'bfloat16', 'bfloat16', 275e12),
    # Not in the table (another H100 or H200 variant, a precision the table lacks): unknown
    # unless measured.
    ('NVIDIA H100 PCIe', 'gpu', None, 'float32', 'tf32', None),
    ('NVIDIA H200 NVL', 'gpu', None, 'float32', 'tf32', None),
    ('TPU v4', 'tpu', 'highest', 'float32', 'float32', None),
    ('cpu', 'cpu', None, 'float32', 'float32', None),
  ],
)
def test_peak_lookup_by_device_kind_and_precision(kind, backend, matmul, precision, compute, peak):
  got = benchmark.device_peak(
    precision, device_kind=kind, backend=backend, matmul_precision=matmul, measure=False
  )
  assert got['compute_precision'] == compute and got['device'] == kind
  assert got['flops_per_s'] == peak
  assert got['source'].startswith('table' if peak else 'unknown')


def test_an_unknown_device_is_measured():
  """This CPU is not in the table: its peak is measured with matrix products, and recorded so."""
  got = benchmark.device_peak('float32')
  assert got['device'] == jax.devices()[0].device_kind and got['compute_precision'] == 'float32'
  assert got['source'].startswith('measured: best of') and 'matrix products' in got['source']
  assert got['flops_per_s'] > 1e9  # Any x86 core of the last two decades exceeds 1 GFLOP/s.
  with pytest.raises(ValueError, match="unknown precision 'float16'"):
    benchmark.device_peak('float16')


def _result():
  """A result whose rates are exact: a model of 1 MFLOP forward, 2 MFLOP input gradient."""
  return {
    'model_flops': {
      'm': {'forward': 1e6, 'input_gradient': 2e6, 'num_classes': 10, 'method': 'by hand'}
    },
    'peak': {'flops_per_s': 1e9},
    'gradient': [
      {
        'model': 'm',
        'batch': 10,
        'jax_s': 0.05,
        'jax_channels_last_s': 0.04,
        'jax_in_loop_s': 0.08,
        'torch_s': None,
      }
    ],
    'attacks': [
      {
        'model': 'm',
        'attack': 'DDN-100',
        'batch': 10,
        'bare_grad_in_loop_s': 0.1,
        'results': {'ddn_jax': {'grads_per_example': 100.0, 'median_s': 4.0}},
      },
      {
        'model': 'm',
        'attack': 'DeepFool-10',
        'hparams': {'candidates': 3},
        'batch': 10,
        'results': {
          'ddn_jax': {'grads_per_example': 20.0, 'median_s': 1.0},
          'foolbox': {'grads_per_example': 20.0, 'median_s': 1.0},
        },
      },
    ],
    'scaling_batch': [{'model': 'm', 'batch': 4, 'steps': 5, 'ddn_s': 0.2}],
    'sweep': {'error': 'not run'},
  }


def test_flop_rates_of_timed_rows():
  result = benchmark.add_flop_rates(_result())
  (g,) = result['gradient']
  # 10 images × 2 MFLOP in 40 ms (the faster lone call) = 0.5 GFLOP/s, half the peak.
  assert g['flop_rates']['jax'] == pytest.approx({'flops_per_s': 5e8, 'fraction_of_peak': 0.5})
  assert g['flop_rates']['jax_in_loop']['flops_per_s'] == pytest.approx(2.5e8)
  assert g['flop_rates']['torch'] == {'flops_per_s': None, 'fraction_of_peak': None}
  ddn, deepfool = result['attacks']
  # 100 gradients × 10 images × 2 MFLOP in 4 s.
  assert ddn['results']['ddn_jax']['flops_per_s'] == pytest.approx(5e8)
  assert ddn['bare_grad_in_loop']['fraction_of_peak'] == pytest.approx(0.2)
  # DeepFool with 3 candidates: each step is one forward and 2 backward passes, 20 backward
  # passes are 10 steps: 10 × 1 MFLOP + 20 × 1 MFLOP per image. foolbox's rows are whole
  # gradients: 20 × 2 MFLOP.
  assert deepfool['results']['ddn_jax']['flops_per_s'] == pytest.approx(10 * 30e6)
  assert deepfool['results']['foolbox']['flops_per_s'] == pytest.approx(10 * 40e6)
  (point,) = result['scaling_batch']
  assert point['ddn']['flops_per_s'] == pytest.approx(5 * 4 * 2e6 / 0.2)
  assert point['bare_grad_in_loop']['flops_per_s'] is None


def test_markdown_shows_flop_rates_and_peak():
  result = benchmark.add_flop_rates(_result())
  result['peak'] = {
    'precision': 'float32',
    'compute_precision': 'float32',
    'device': 'cpu',
    'flops_per_s': 1e9,
    'source': 'measured: test',
  }
  lines = benchmark.to_markdown(_as_recorded(result)).splitlines()
  assert any(line.startswith('- Peak for the run') and '**1 GFLOP/s**' in line for line in lines)
  assert '- m FLOPs per image: forward 1 M, input gradient 2 M (2.00× the forward' in '\n'.join(
    lines
  )
  (row,) = [line for line in lines if line.startswith('| m | 10 |')]
  assert row.endswith('| 500 M (50%) | 250 M (25%) | – |')
  (row,) = [line for line in lines if line.startswith('| m | DDN-100 | 10 | ddn_jax |')]
  assert '| 500 M (50%) | 200 M (20%) |' in row


def _as_recorded(result):
  """Fills the fields `to_markdown` reads that the rates do not need."""
  result = copy.deepcopy(result)
  result.update(
    tag='t',
    command='c',
    preset_name='tiny',
    preset={'repeats': 1, 'warmup': 1},
    date='d',
    total_s=60.0,
    complete=True,
    load_start=[0, 0, 0],
    load_end=[0, 0, 0],
    notes=[],
    scaling_steps=[],
    compaction=[],
    machine={
      'cpu': 'x',
      'logical_cpus': 1,
      'backend': 'cpu',
      'device': 'cpu',
      'num_devices': 1,
      'torch_threads': None,
      'xla_flags': None,
      'allocator': 'a',
      'malloc_conf': None,
      'versions': {},
    },
  )
  result['gradient'][0].update(jax_over_torch=None, jax_over_torch_cpu=None, compile_s=1.0)
  for a in result['attacks']:
    a['errors'] = {}
    for r in a['results'].values():
      r.update(s_per_1000_images=1.0, compile_s=None, success_rate=1.0, median_l2=None)
  result['scaling_batch'][0].update(
    bare_grad_s=0.01,
    ddn_s_per_1000_images=1.0,
    overhead=1.0,
    ddn_compile_s=1.0,
    peak_rss_bytes=0,
    rss_before_bytes=0,
    ddn_temp_bytes=None,
  )
  return result


@pytest.fixture
def recorded(tmp_path):
  """A copy of the recorded H100 run, as it was before FLOPs were added."""
  result = json.loads((ROOT / 'benchmarks/results/gpu-nvidia-h100-80gb-hbm3.json').read_text())
  for key in ('peak', 'model_flops', 'precision'):
    result.pop(key, None)
  path = tmp_path / 'run.json'
  path.write_text(json.dumps(result))
  return path, result


def test_annotate_adds_rates_to_a_recorded_gpu_result(recorded):
  path, before = recorded
  result = benchmark.annotate(path)
  # The H100's float32 run used TF32 (matmul precision unset): the table's TF32 figure.
  assert result['peak']['compute_precision'] == 'tf32'
  assert result['peak']['flops_per_s'] == 494.7e12
  assert json.loads(path.read_text()) == json.loads(json.dumps(result))
  for a in result['attacks']:
    for r in a['results'].values():
      assert 0 < r['fraction_of_peak'] < 1 and r['flops_per_s'] > 0
  # Only keys were added: every recorded time and count is as it was.
  assert (
    result['attacks'][0]['results']['ddn_jax']['median_s']
    == (before['attacks'][0]['results']['ddn_jax']['median_s'])
  )
  markdown = path.with_suffix('.md').read_text()
  assert '| FLOP/s (% of peak) |' in markdown


def test_annotate_leaves_another_machines_cpu_peak_unknown(recorded):
  path, result = recorded
  here = _setup.machine_info()
  result['machine'].update(backend='cpu', device='cpu', cpu=f'not {here["cpu"]}')
  result['machine'].pop('gpu')
  path.write_text(json.dumps(result))
  result = benchmark.annotate(path, measure_peak=True)
  assert result['peak']['flops_per_s'] is None and result['peak']['source'].startswith('unknown')
  r = result['attacks'][0]['results']['ddn_jax']
  assert r['flops_per_s'] > 0 and r['fraction_of_peak'] is None
  assert "Peak for the run's precision (float32, computed as float32 on cpu): **unknown**" in (
    path.with_suffix('.md').read_text()
  )


def test_a_bfloat16_run_counts_the_float32_forward_of_each_gradient():
  """In bfloat16 a gradient is the bfloat16 forward and backward plus the float32 forward that
  gives the logits (`models.make_logits_fn`): one forward more than in float32."""
  counts = {
    p: benchmark.model_flops(_setup.make_model('small_cnn', 0, p)[2], (28, 28, 1))
    for p in ('float32', 'bfloat16')
  }
  f32, bf16 = counts['float32'], counts['bfloat16']
  assert bf16['forward'] == pytest.approx(f32['forward'], rel=0.01)
  assert bf16['input_gradient'] == pytest.approx(f32['input_gradient'] + f32['forward'], rel=0.02)
