"""InceptionV3 imports torchvision-layout weights: the logits of our twin and of torchvision."""

import jax
import numpy as np
import pytest
from optional_deps import require, require_torchvision_models

from ddn_jax import data, interop, models
from ddn_jax.interop import _torch_models

torch = require('torch')


@pytest.fixture(scope='module')
def torchvision_state_dict():
  """A seeded torchvision-layout Inception-v3 with its auxiliary head and non-trivial BN stats."""
  torch.manual_seed(0)
  module = _torch_models.Inception3(
    aux_logits=True, mean=models.InceptionV3.mean, std=models.InceptionV3.std
  )
  return _random_batch_norms(module).state_dict()


def _random_batch_norms(module):
  """``module`` with non-trivial (seeded) batch norm statistics and affine parameters."""
  generator = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for name, buffer in module.named_buffers():
      if name.endswith('running_mean'):
        buffer.normal_(0, 0.2, generator=generator)
      elif name.endswith('running_var'):
        buffer.uniform_(0.5, 2, generator=generator)
    for name, param in module.named_parameters():
      if name.endswith('bn.weight'):
        param.uniform_(0.5, 1.5, generator=generator)
      elif name.endswith('bn.bias'):
        param.normal_(0, 0.1, generator=generator)
  return module


@pytest.fixture(scope='module')
def images():
  """Two real CIFAR-10 test images, bilinearly upscaled to 299×299, in [0, 1]."""
  require('foolbox')
  cifar, _ = data.load('cifar10', 'test', source='foolbox')
  small = cifar[:2].astype(np.float32) / 255
  return np.clip(np.asarray(jax.image.resize(small, (2, 299, 299, 3), 'bilinear')), 0, 1)


def test_logits_match_torch_and_round_trip(torchvision_state_dict, images):
  model = models.InceptionV3()
  variables = interop.from_torch_state_dict('inception_v3', torchvision_state_dict)
  module = interop.torch_model(model)
  no_aux = {k: v for k, v in torchvision_state_dict.items() if not k.startswith('AuxLogits.')}
  module.load_state_dict(no_aux)  # strict: the same keys and shapes without the aux head
  with torch.no_grad():
    torch_logits = module.eval()(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
  jax_logits = np.asarray(models.make_logits_fn(model, variables)(images))
  assert jax_logits.shape == (2, 1000)
  scale = np.abs(torch_logits).max()
  assert scale > 0 and np.std(torch_logits) > 1e-3 * scale  # not a degenerate network
  np.testing.assert_allclose(jax_logits / scale, torch_logits / scale, atol=1e-4)
  # Back to PyTorch: exactly the original tensors (the aux head is not carried).
  back = interop.to_torch_state_dict(model, variables)
  assert list(back) == list(module.state_dict())
  for key, value in back.items():
    if not key.endswith('num_batches_tracked'):
      assert torch.equal(value, no_aux[key]), key
  n_flax = sum(a.size for a in jax.tree.leaves(variables['params']))
  n_torch = sum(p.numel() for p in module.parameters())
  assert n_flax == n_torch


def test_mismatched_state_dict_names_keys(torchvision_state_dict):
  bad = dict(torchvision_state_dict)
  del bad['Mixed_6b.branch7x7_2.conv.weight']
  bad['Mixed_6b.branch7x7_9.conv.weight'] = torch.zeros(1)
  bad['AuxLogits.fc.weight'] = torch.zeros(10, 768)
  bad['fc.bias'] = torch.zeros(10)
  with pytest.raises(ValueError) as error:
    interop.from_torch_state_dict('inception_v3', bad)
  message = str(error.value)
  assert 'missing Mixed_6b.branch7x7_2.conv.weight (128, 128, 1, 7)' in message
  assert 'unexpected Mixed_6b.branch7x7_9.conv.weight' in message
  assert 'AuxLogits.fc.weight has shape (10, 768), expected (1000, 768)' in message
  assert 'fc.bias has shape (10,), expected (1000,)' in message
  with pytest.raises(ValueError, match='RGB'):
    interop.torch_model('inception_v3', input_shape=(299, 299, 1))


def test_logits_match_torchvision(images):
  """Against torchvision's own ``inception_v3`` (not the twin above), as its weights are used."""
  torchvision_models = require_torchvision_models()
  torch.manual_seed(0)
  module = torchvision_models.inception_v3(
    weights=None, aux_logits=True, init_weights=True, transform_input=True
  )
  module = _random_batch_norms(module).eval()
  variables = interop.from_torch_state_dict('inception_v3', module.state_dict())
  model = models.InceptionV3()  # transform_input, ImageNet statistics: the pretrained setting
  # torchvision's input is standardised by the user's transforms.Normalize; ours inside.
  mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
  standardised = (images.transpose(0, 3, 1, 2) - mean) / std
  with torch.no_grad():
    torch_logits = module(torch.from_numpy(np.ascontiguousarray(standardised))).numpy()
  jax_logits = np.asarray(models.make_logits_fn(model, variables)(images))
  scale = np.abs(torch_logits).max()
  assert scale > 0 and np.std(torch_logits) > 1e-3 * scale  # not a degenerate network
  np.testing.assert_allclose(jax_logits / scale, torch_logits / scale, atol=1e-5)
