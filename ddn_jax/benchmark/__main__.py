"""``python -m ddn_jax.benchmark``: the benchmark command (see `ddn_jax.benchmark`)."""

from ddn_jax.benchmark import main

if __name__ == '__main__':
  main()
