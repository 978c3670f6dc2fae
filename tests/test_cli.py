"""The ddn-jax command line."""

import json

import pytest

from ddn_jax import cli


def test_demo_writes_a_report(tmp_path, capsys):
  assert cli.main(['demo', '--num-images', '16', '--epochs', '1', '--out', str(tmp_path)]) == 0
  report = json.loads((tmp_path / 'demo.json').read_text())
  assert report['clean_accuracy'] > 0.8
  names = [row['attack'] for row in report['attacks']]
  assert names == ['DDN 100', 'C&W 1x100']
  ddn = report['attacks'][0]
  assert ddn['num_examples'] == 16 and ddn['success_rate'] == 1.0 and ddn['mean_grads'] == 100
  assert 0 < ddn['median_l2'] < 5
  assert '| DDN 100 | 100.0% |' in capsys.readouterr().out


def test_bad_arguments_give_one_line_errors(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(['demo', '--num-images', '0'])
  assert e.value.code == 2
  assert 'error: --num-images must be between 1 and 1000' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    cli.main(['no-such-command'])
