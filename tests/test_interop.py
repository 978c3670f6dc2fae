"""Flax <-> PyTorch conversion of the three architectures: exact round trips, same logits."""

import jax
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import data, interop, models

torch = require('torch')


def _perturbed(variables, seed):
  """Variables with non-trivial batch-norm statistics, so that they are exercised too."""
  rng = np.random.default_rng(seed)

  def perturb(path, a):
    if path[-1].key == 'mean':
      return a + rng.normal(0, 0.1, a.shape).astype(np.float32)
    return a * rng.uniform(0.5, 2, a.shape).astype(np.float32)

  variables = dict(variables)
  if 'batch_stats' in variables:
    variables['batch_stats'] = jax.tree_util.tree_map_with_path(perturb, variables['batch_stats'])
  return variables


@pytest.fixture(scope='module')
def cifar_images():
  require('foolbox')
  images, _ = data.load('cifar10', 'test', source='foolbox')
  return images.astype(np.float32) / 255


ARCHITECTURES = [
  (models.SmallCNN(), (28, 28, 1)),
  (models.CifarCNN(), (32, 32, 3)),
  (models.WideResNet(depth=10, width=2), (32, 32, 3)),
  (models.PreActResNet18(), (32, 32, 3)),
  (models.DMWideResNet(depth=10, width=1), (32, 32, 3)),
  (models.DMPreActResNet(), (32, 32, 3)),
  (models.ResNet(depth=18), (32, 32, 3)),
]


@pytest.mark.parametrize('model,shape', ARCHITECTURES, ids=lambda m: type(m).__name__)
def test_round_trips_are_exact(model, shape):
  variables = _perturbed(model.init(jax.random.key(1), np.zeros((1, *shape), np.float32)), 2)
  state_dict = interop.to_torch_state_dict(model, variables)
  back = interop.from_torch_state_dict(model, state_dict)
  assert jax.tree.structure(back) == jax.tree.structure(dict(variables))
  jax.tree.map(np.testing.assert_array_equal, back, dict(variables))
  again = interop.to_torch_state_dict(model, back)
  assert list(again) == list(state_dict)
  for key, value in state_dict.items():
    assert torch.equal(again[key], value), key


def test_variables_do_not_share_the_tensors_memory():
  # On CPU, JAX can alias a NumPy view of a tensor: an in-place PyTorch update (a training step
  # on the module the state_dict came from) would change the immutable Flax variables.
  model = models.WideResNet(depth=10, width=1)
  variables = _perturbed(model.init(jax.random.key(1), np.zeros((1, 32, 32, 3), np.float32)), 2)
  state_dict = interop.to_torch_state_dict(model, variables)
  back = interop.from_torch_state_dict(model, state_dict)
  for value in state_dict.values():
    value.add_(1)
  jax.tree.map(np.testing.assert_array_equal, back, dict(variables))


def test_torch_model_matches_state_dict_layout():
  module = interop.torch_model('small_cnn')
  flax_model = models.SmallCNN()
  variables = flax_model.init(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32))
  module.load_state_dict(interop.to_torch_state_dict(flax_model, variables))  # strict
  assert 'feature_extractor.conv1.weight' in module.state_dict()
  assert interop.torch_model('wide_resnet', depth=16, width=1).fc.in_features == 64


def test_logits_agree_on_real_digits(mnist_cnn):
  logits_fn, images, _ = mnist_cnn
  model, variables = logits_fn.func.model, logits_fn.args[0]
  module = interop.to_torch(model, variables)
  with torch.no_grad():
    torch_logits = module(torch.from_numpy(images[:200].transpose(0, 3, 1, 2).copy())).numpy()
  np.testing.assert_allclose(torch_logits, logits_fn(images[:200]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
  'model',
  [
    models.CifarCNN(),
    models.WideResNet(depth=10, width=2),
    models.PreActResNet18(activated_shortcut=False, final_norm=False),
    models.DMWideResNet(depth=10, width=1),
    models.DMPreActResNet(),
  ],
)
def test_logits_agree_on_real_cifar(model, cifar_images):
  variables = _perturbed(model.init(jax.random.key(3), cifar_images[:1]), 4)
  with torch.no_grad():
    torch_logits = interop.to_torch(model, variables)(
      torch.from_numpy(cifar_images.transpose(0, 3, 1, 2).copy())
    ).numpy()
  jax_logits = np.asarray(model.apply(variables, cifar_images))
  scale = np.abs(jax_logits).max()
  assert scale > 0
  np.testing.assert_allclose(torch_logits / scale, jax_logits / scale, atol=1e-5)


def test_file_round_trip_and_mismatches_are_named(tmp_path):
  model = models.SmallCNN()
  variables = model.init(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32))
  path = tmp_path / 'small_cnn.pt'
  interop.save_torch_state_dict(model, variables, path)
  jax.tree.map(
    np.testing.assert_array_equal, interop.load_torch_state_dict('small_cnn', path), variables
  )

  state_dict = interop.to_torch_state_dict(model, variables)
  del state_dict['classifier.fc3.bias']
  state_dict['classifier.fc4.weight'] = torch.zeros(3)
  state_dict['feature_extractor.conv1.weight'] = torch.zeros(32, 3, 3, 3)
  with pytest.raises(ValueError) as error:
    interop.from_torch_state_dict(model, state_dict)
  message = str(error.value)
  assert 'missing classifier.fc3.bias' in message
  assert 'unexpected classifier.fc4.weight' in message
  assert 'feature_extractor.conv1.weight has shape (32, 3, 3, 3), expected (32, 1, 3, 3)' in message
  # A CIFAR state_dict is not an MNIST one.
  with pytest.raises(ValueError, match='classifier.fc1.weight has shape'):
    interop.from_torch_state_dict('small_cnn', interop.torch_model('cifar_cnn').state_dict())

  bad = dict(variables['params'])
  bad.pop('Dense_2')
  with pytest.raises(ValueError, match='missing params/Dense_2/kernel'):
    interop.to_torch_state_dict(model, {'params': bad})

  torch.save([1, 2], tmp_path / 'list.pt')
  with pytest.raises(ValueError, match='not a state_dict'):
    interop.load_torch_state_dict(model, tmp_path / 'list.pt')


class _NotWeights:
  """An arbitrary pickled object, which weights_only loading refuses."""


def test_damaged_and_wrapped_state_dict_files(tmp_path):
  model = models.SmallCNN()
  variables = model.init(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32))
  state_dict = interop.to_torch_state_dict(model, variables)
  # A training checkpoint with one state_dict among other entries is unwrapped.
  optimizer = {'state': {}, 'param_groups': [{'lr': 0.1}]}
  torch.save({'state_dict': state_dict, 'optimizer': optimizer, 'epoch': 3}, tmp_path / 'ckpt.pt')
  jax.tree.map(
    np.testing.assert_array_equal,
    interop.load_torch_state_dict('small_cnn', tmp_path / 'ckpt.pt'),
    variables,
  )
  good = tmp_path / 'good.pt'
  torch.save(state_dict, good)
  (tmp_path / 'empty.pt').write_bytes(b'')
  (tmp_path / 'truncated.pt').write_bytes(good.read_bytes()[: good.stat().st_size // 2])
  torch.save(_NotWeights(), tmp_path / 'object.pt')
  torch.save({'model': state_dict, 'ema': state_dict}, tmp_path / 'two.pt')
  torch.save({'epoch': 3, 'step': 100}, tmp_path / 'ints.pt')
  torch.save({**state_dict, 'epoch': 3}, tmp_path / 'mixed.pt')
  for name, expected in [
    ('empty', 'empty.pt is empty'),
    ('truncated', 'truncated.pt is not a readable PyTorch file'),
    ('object', 'object.pt holds pickled objects other than tensors'),
    ('two', r"two.pt holds several state_dicts, under the keys \['model', 'ema'\]"),
    ('ints', r"ints.pt holds a dict of \['int'\], not a state_dict of tensors"),
    ('mixed', r"entries \['epoch'\] are not tensors"),
  ]:
    with pytest.raises(ValueError, match=expected) as error:
      interop.load_torch_state_dict('small_cnn', tmp_path / f'{name}.pt')
    assert '\n' not in str(error.value)
  with pytest.raises(FileNotFoundError):
    interop.load_torch_state_dict('small_cnn', tmp_path / 'missing.pt')
