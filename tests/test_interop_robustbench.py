"""RobustBench checkpoints: `interop.from_robustbench` gives the logits of RobustBench's own code.

RobustBench's package ``__init__`` needs timm and its data code, but its architecture files
import only torch, so they are loaded by path. An entry's class in ``model_zoo/cifar10.py``
(which needs timm) is an architecture with ``mu``/``sigma`` buffers applied first: `_entry` makes
the same. The weights are random, with random batch norm statistics and normalisations.
"""

import ast
import importlib.util
import pathlib

import jax
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import data, interop, models
from ddn_jax.interop import _robustbench

torch = require('torch')
require('robustbench')


_MODEL_ZOO = (
  pathlib.Path(importlib.util.find_spec('robustbench').submodule_search_locations[0]) / 'model_zoo'
)


def _architecture(name):
  """RobustBench's ``model_zoo/architectures/{name}.py``, loaded by path."""
  path = _MODEL_ZOO / 'architectures' / f'{name}.py'
  spec = importlib.util.spec_from_file_location(f'robustbench_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


wide_resnet, resnet = _architecture('wide_resnet'), _architecture('resnet')
dm_wide_resnet = _architecture('dm_wide_resnet')


def _entry(base, *args, mu, sigma, **kwargs):
  """``base(*args, **kwargs)`` with an entry's ``mu``/``sigma`` buffers, as cifar10.py's classes."""

  class Entry(base):
    def __init__(self):
      super().__init__(*args, **kwargs)
      self.register_buffer('mu', torch.tensor(mu, dtype=torch.float32).view(1, 3, 1, 1))
      self.register_buffer('sigma', torch.tensor(sigma, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x):
      return super().forward((x - self.mu) / self.sigma)

  return Entry()


def _randomised(module, seed):
  """``module`` in eval mode, with random (seeded) batch norm statistics and affine parameters."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for layer in module.modules():
      if isinstance(layer, torch.nn.BatchNorm2d):
        layer.running_mean.normal_(0, 0.2, generator=generator)
        layer.running_var.uniform_(0.5, 2, generator=generator)
        layer.weight.uniform_(0.5, 1.5, generator=generator)
        layer.bias.normal_(0, 0.1, generator=generator)
  return module.eval()


def _random_stats(seed):
  generator = np.random.default_rng(seed)
  return generator.uniform(0.3, 0.6, 3).tolist(), generator.uniform(0.15, 0.35, 3).tolist()


@pytest.fixture(scope='module')
def images():
  """Two real CIFAR-10 test images in [0, 1], NHWC."""
  require('foolbox')
  cifar, _ = data.load('cifar10', 'test', source='foolbox')
  return cifar[:2].astype(np.float32) / 255


def _assert_same_parameter_count(module, variables):
  n_flax = sum(a.size for a in jax.tree.leaves(variables['params']))
  assert n_flax == sum(p.numel() for p in module.parameters())


def _assert_round_trip(module, model, variables):
  """Back to PyTorch: the original tensors (a normalisation buffer ``mu``/``sigma`` is the Flax
  module's, not a variable)."""
  back = interop.to_torch_state_dict(model, variables)
  original = module.state_dict()
  assert set(back) == set(original) - {'mu', 'sigma'}
  for key, value in back.items():
    if not key.endswith('num_batches_tracked'):
      assert torch.equal(value, original[key]), key


def _assert_same_logits(module, model, variables, images):
  with torch.no_grad():
    torch_logits = module(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
  jax_logits = np.asarray(models.make_logits_fn(model, variables)(images))
  scale = np.abs(torch_logits).max()
  assert scale > 0 and np.std(torch_logits) > 1e-3 * scale  # not a degenerate network
  # Measured: at most 5e-7 of the scale (float32 rounding of the convolutions).
  np.testing.assert_allclose(jax_logits / scale, torch_logits / scale, atol=1e-5)


@pytest.fixture(scope='module')
def wrn_28_10():
  torch.manual_seed(0)
  return _randomised(wide_resnet.WideResNet(depth=28, widen_factor=10), 1)


def test_standard_wide_resnet_28_10(wrn_28_10, images):
  model, variables = interop.from_robustbench('Standard', wrn_28_10.state_dict())
  assert isinstance(model, models.WideResNet) and (model.depth, model.width) == (28, 10)
  _assert_same_logits(wrn_28_10, model, variables, images)


def test_rony2019_decoupling_from_a_file(wrn_28_10, images, tmp_path):
  mu, sigma = _random_stats(2)
  module = _entry(wide_resnet.WideResNet, depth=28, widen_factor=10, mu=mu, sigma=sigma)
  module.load_state_dict(wrn_28_10.state_dict(), strict=False)  # all but mu and sigma
  module.eval()
  # A DataParallel training checkpoint, as RobustBench's files often are.
  path = tmp_path / 'Rony2019Decoupling.pt'
  state_dict = {f'module.{k}': v for k, v in module.state_dict().items()}
  torch.save({'state_dict': state_dict, 'epoch': 200}, path)
  model, variables = interop.from_robustbench('Rony2019Decoupling', path)
  np.testing.assert_array_equal(model.mean, np.float32(mu))
  np.testing.assert_array_equal(model.std, np.float32(sigma))
  _assert_same_logits(module, model, variables, images)
  # The DDN authors' own checkpoints: their NormalizedModel's 'mean'/'std' and 'model.' prefix.
  ddn_layout = {
    ('model.' + k if k not in ('mu', 'sigma') else {'mu': 'mean', 'sigma': 'std'}[k]): v
    for k, v in module.state_dict().items()
  }
  model, _ = interop.from_robustbench('Rony2019Decoupling', ddn_layout)
  np.testing.assert_array_equal(model.mean, np.float32(mu))


def test_entry_statistics_where_the_file_has_none(wrn_28_10, images):
  # RobustBench keeps its class's buffers where the checkpoint has no normalisation.
  model, variables = interop.from_robustbench('Rony2019Decoupling', wrn_28_10.state_dict())
  module = _entry(
    wide_resnet.WideResNet,
    depth=28,
    widen_factor=10,
    mu=[0.491, 0.482, 0.447],
    sigma=[0.247, 0.243, 0.262],
  )
  module.load_state_dict(wrn_28_10.state_dict(), strict=False)
  _assert_same_logits(module.eval(), model, variables, images)


@pytest.mark.parametrize(
  'block,kwargs,target',
  [
    # Rice2020Overfitting (L2): PreActBlockV2, BN-ReLU before the classifier.
    ('PreActBlockV2', {'bn_before_fc': True}, 'Rice2020Overfitting'),
    # Wong2020Fast (Linf): PreActBlock, whose shortcuts see the raw input; no final BN.
    ('PreActBlock', {}, models.PreActResNet18(activated_shortcut=False, final_norm=False)),
  ],
  ids=['Rice2020Overfitting', 'Wong2020Fast'],
)
def test_preact_resnet18(block, kwargs, target, images):
  torch.manual_seed(3)
  mu, sigma = _random_stats(4)
  module = _entry(
    resnet.PreActResNet, getattr(resnet, block), [2, 2, 2, 2], mu=mu, sigma=sigma, **kwargs
  )
  module = _randomised(module, 5)
  model, variables = interop.from_robustbench(target, module.state_dict())
  assert isinstance(model, models.PreActResNet18)
  _assert_same_logits(module, model, variables, images)
  _assert_same_parameter_count(module, variables)
  _assert_round_trip(module, model, variables)


def test_bad_input_is_named():
  with pytest.raises(ValueError, match=r"'Ding2020MMA' is a WideResNet-28-4 with per-image"):
    interop.from_robustbench('Ding2020MMA', {})
  with pytest.raises(ValueError, match=r"Unknown RobustBench entry 'standard'.*'Standard'"):
    interop.from_robustbench('standard', {})
  with pytest.raises(TypeError, match='not a SmallCNN'):
    interop.from_robustbench(models.SmallCNN(), {})
  state_dict = resnet.PreActResNet(resnet.PreActBlockV2, [2, 2, 2, 2]).state_dict()
  with pytest.raises(ValueError, match=r'missing bn.weight \(512,\)'):
    interop.from_robustbench('Rice2020Overfitting', state_dict)
  with pytest.raises(ValueError, match=r'missing block1.layer.0.bn1.weight.*unexpected layer1'):
    interop.from_robustbench('Standard', state_dict)
  ones = torch.ones(1, 3, 1, 1)
  with pytest.raises(ValueError, match="has 'mu' but not 'mu' and 'sigma'"):
    interop.from_robustbench('Rice2020Overfitting', {**state_dict, 'mu': ones})
  with pytest.raises(ValueError, match="two input normalisations, \\('mu', 'sigma'\\)"):
    interop.from_robustbench(
      'Rice2020Overfitting', {**state_dict, 'mu': ones, 'sigma': ones, 'mean': ones}
    )
  with pytest.raises(ValueError, match='finite with a positive sigma'):
    interop.from_robustbench('Rice2020Overfitting', {'mu': ones, 'sigma': 0 * ones})
  with pytest.raises(ValueError, match=r"'sigma' has shape \(1, 4, 1, 1\)"):
    interop.from_robustbench('Rice2020Overfitting', {'mu': ones, 'sigma': torch.ones(1, 4, 1, 1)})


def _cifar10_py():
  return ast.parse((_MODEL_ZOO / 'cifar10.py').read_text())


def _l2_entries():
  """RobustBench's CIFAR-10 L2 entries, read from ``model_zoo/cifar10.py`` (which needs timm):
  ``{name: (class name, {keyword: source text})}`` of each ``lambda: Class(**keywords)`` entry,
  ``(class name, None)`` for the others."""
  tree = _cifar10_py()
  (l2,) = [
    node.value
    for node in tree.body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'l2'
  ]
  entries = {}
  for pair in l2.args[0].elts:
    name, spec = ast.literal_eval(pair.elts[0]), pair.elts[1]
    model = spec.values[[ast.literal_eval(k) for k in spec.keys].index('model')]
    if isinstance(model, ast.Lambda) and isinstance(model.body, ast.Call):
      keywords = {k.arg: ast.unparse(k.value) for k in model.body.keywords}
      entries[name] = (ast.unparse(model.body.func), keywords)
    else:
      entries[name] = (ast.unparse(model), None)
  return entries


def test_every_l2_entry_is_supported_or_named_missing():
  l2 = _l2_entries()
  assert len(l2) > 20 and not set(_robustbench._ENTRIES) & set(_robustbench._MISSING)
  assert set(l2) == set(_robustbench._ENTRIES) | set(_robustbench._MISSING)


@pytest.mark.parametrize(
  'name',
  sorted(n for n, e in _robustbench._ENTRIES.items() if e.architecture.__name__.startswith('DM')),
)
def test_deepmind_entries_are_robustbench_s(name):
  """Each entry's class and keywords in cifar10.py, and the parameter shapes they give."""
  module, stats = _robustbench._model(name)
  cls, keywords = _l2_entries()[name]
  assert cls == type(module).__name__ and stats is None  # the module's own normalisation
  assert keywords.pop('activation_fn') in ('Swish', 'nn.SiLU')  # the same function
  assert keywords.pop('num_classes') == str(module.num_classes)
  assert keywords.pop('width') == str(getattr(module, 'width', 0))
  assert keywords.pop('depth') == str(module.depth)
  assert keywords == {'mean': 'CIFAR10_MEAN', 'std': 'CIFAR10_STD'}
  assert module.mean == dm_wide_resnet.CIFAR10_MEAN and module.std == dm_wide_resnet.CIFAR10_STD
  # On the meta device: shapes only, so a WRN-70-16 costs nothing.
  with torch.device('meta'):
    theirs = getattr(dm_wide_resnet, cls)(
      depth=module.depth, width=getattr(module, 'width', 0), activation_fn=dm_wide_resnet.Swish
    )
    ours = interop.torch_model(module)
  shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}
  assert shapes(ours) == shapes(theirs)


@pytest.mark.parametrize(
  'depth,width,activation',
  [(10, 2, dm_wide_resnet.Swish), (16, 1, torch.nn.SiLU)],
  ids=['WRN-10-2-Swish', 'WRN-16-1-SiLU'],
)
def test_dm_wide_resnet(depth, width, activation, images):
  # Depth 16 has blocks without a projection; width 1 keeps the first group's width (16).
  torch.manual_seed(6)
  mu, sigma = _random_stats(7)
  module = dm_wide_resnet.DMWideResNet(
    depth=depth, width=width, activation_fn=activation, mean=mu, std=sigma
  )
  module = _randomised(module, 8)
  target = models.DMWideResNet(depth=depth, width=width, mean=mu, std=sigma)
  model, variables = interop.from_robustbench(target, module.state_dict())
  _assert_same_logits(module, model, variables, images)
  _assert_same_parameter_count(module, variables)
  # Training mode: batch statistics, and PyTorch's momentum 0.1 in the running means (not the
  # variances: PyTorch keeps the unbiased batch variance, Flax the biased one).
  batch = np.concatenate([images, images[:, ::-1]])
  with torch.no_grad():
    torch_logits = module.train()(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())).numpy()
  jax_logits, updates = model.apply(variables, batch, train=True, mutable=['batch_stats'])
  scale = np.abs(torch_logits).max()
  np.testing.assert_allclose(np.asarray(jax_logits) / scale, torch_logits / scale, atol=1e-5)
  running = interop.to_torch_state_dict(model, {**variables, **updates})
  for key, value in module.state_dict().items():
    if key.endswith('running_mean'):
      np.testing.assert_allclose(running[key].numpy(), value.numpy(), atol=1e-5, err_msg=key)


def test_dm_preact_resnet18(images, tmp_path):
  torch.manual_seed(9)
  # As cifar10.py builds Rebuffi2021Fixing_R18_cutmix_ddpm: its normalisation is not in the file.
  module = dm_wide_resnet.DMPreActResNet(
    num_classes=10,
    depth=18,
    width=0,
    activation_fn=dm_wide_resnet.Swish,
    mean=dm_wide_resnet.CIFAR10_MEAN,
    std=dm_wide_resnet.CIFAR10_STD,
  )
  module = _randomised(module, 10)
  path = tmp_path / 'Rebuffi2021Fixing_R18_cutmix_ddpm.pt'
  torch.save(module.state_dict(), path)
  model, variables = interop.from_robustbench('Rebuffi2021Fixing_R18_cutmix_ddpm', path)
  assert isinstance(model, models.DMPreActResNet) and model.depth == 18
  _assert_same_logits(module, model, variables, images)
  _assert_round_trip(module, model, variables)


def _buffers(cls):
  """``{name: values}`` of the ``register_buffer(name, torch.tensor([...]))`` calls of
  cifar10.py's class ``cls`` (none for a class defined elsewhere)."""
  classes = [n for n in _cifar10_py().body if isinstance(n, ast.ClassDef) and n.name == cls]
  buffers = {}
  for node in ast.walk(classes[0]) if classes else ():
    if isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'register_buffer':
      values = node.args[1]
      while not (isinstance(values, ast.Call) and ast.unparse(values.func) == 'torch.tensor'):
        values = values.func.value  # through .view(...)
      buffers[ast.literal_eval(node.args[0])] = tuple(ast.literal_eval(values.args[0]))
  return buffers


@pytest.mark.parametrize(
  'name', sorted(n for n, e in _robustbench._ENTRIES.items() if e.stats is not None)
)
def test_fallback_normalisation_is_the_entry_class_s(name):
  # What a file without mu/sigma gets: the class's buffers, or none (RobustBench's plain nets).
  cls, keywords = _l2_entries()[name]
  buffers = _buffers(cls) if keywords is None else {}
  expected = (buffers['mu'], buffers['sigma']) if buffers else ((0.0,) * 3, (1.0,) * 3)
  assert _robustbench._ENTRIES[name].stats == expected


@pytest.mark.parametrize('name', ['Sehwag2021Proxy_R18', 'Augustin2020Adversarial'])
def test_resnet(name, images):
  torch.manual_seed(11)
  if name == 'Sehwag2021Proxy_R18':  # RobustBench's ResNet18(): no normalisation
    module = resnet.ResNet18()
  else:  # a ResNet-50 with mu/sigma buffers
    mu, sigma = _random_stats(12)
    module = _entry(resnet.ResNet, resnet.Bottleneck, [3, 4, 6, 3], mu=mu, sigma=sigma)
  module = _randomised(module, 13)
  model, variables = interop.from_robustbench(name, module.state_dict())
  assert isinstance(model, models.ResNet)
  _assert_same_logits(module, model, variables, images)
  _assert_same_logits(interop.to_torch(model, variables), model, variables, images)  # the twin
  _assert_same_parameter_count(module, variables)
  _assert_round_trip(module, model, variables)
