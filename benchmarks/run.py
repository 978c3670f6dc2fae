"""``python -m benchmarks.run``: the benchmark command of `ddn_jax.benchmark`, from the checkout.

The same command as ``python -m ddn_jax.benchmark`` and ``ddn-jax bench``, with the same flags.
"""

from ddn_jax.benchmark import main

if __name__ == '__main__':
  main(prog='python -m benchmarks.run')
