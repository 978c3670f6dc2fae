"""Attack specs of the paper's tables, shared by the experiment configs (plain dicts).

Each spec is ``{'attack': name in ddn_jax.attacks.ATTACKS, 'kwargs'}``, its table label derived
from the settings by the registry (`ddn_jax.attacks.attack_label`); a C&W spec with a ``grid`` is
first grid-searched on its first ``grid_images`` examples, and run with the point of best median
L2 (Rony et al., 2019, Section 4).
"""

# Section 4: learning rates x initial constants of the grid search for the short C&W budgets.
CW_GRID = {
  'learning_rate': [0.01, 0.05, 0.1, 0.5, 1.0],
  'initial_const': [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0],
}


def ddn(steps: int) -> dict:
  """DDN with the paper's fixed hyperparameters: ε0 = 1, γ = 0.05, α 1 -> 0.01, 256 levels."""
  kwargs = {'steps': steps, 'gamma': 0.05, 'init_norm': 1.0, 'alpha_init': 1.0}
  return {'attack': 'ddn', 'kwargs': {**kwargs, 'alpha_final': 0.01}}


def carlini_wagner(
  search_steps: int,
  iterations: int,
  *,
  grid_images: int | None = None,
  num_images: int | None = None,
) -> dict:
  """C&W L2; Carlini's hyperparameters (lr 0.01, C0 0.01), or a grid search if ``grid_images``.

  With the per-example early abort, as the paper's C&W (Carlini's code) and the committed tables
  ran it; the library's default is no abort (``experiments/results/cw_abort_rule.md``).
  ``num_images``: attack only the first ones (for a budget a CPU cannot afford on all).
  """
  spec = {
    'attack': 'cw',
    'kwargs': {
      'binary_search_steps': search_steps,
      'steps': iterations,
      'learning_rate': 0.01,
      'initial_const': 0.01,
      'abort_early': 'example',
    },
  }
  if grid_images:
    spec.update(grid=CW_GRID, grid_images=grid_images)
  if num_images:
    spec.update(num_images=num_images)
  return spec


def deepfool(steps: int = 100) -> dict:
  """DeepFool L2 (Foolbox's defaults: overshoot 0.02, the 10 most likely classes)."""
  kwargs = {'steps': steps, 'overshoot': 0.02}  # candidates: the default, the 10 most likely
  return {'attack': 'deepfool', 'kwargs': kwargs}


def table1(*, grid_images: int, cw_long: tuple[int, int] = (9, 10000), ddn_steps=(100, 300, 1000)):
  """Table 1's rows: C&W 4×25 and 1×100 (grid-searched), C&W 9×10000, DeepFool 100, DDN."""
  return [
    carlini_wagner(4, 25, grid_images=grid_images),
    carlini_wagner(1, 100, grid_images=grid_images),
    carlini_wagner(*cw_long),
    deepfool(100),
    *(ddn(steps) for steps in ddn_steps),
  ]


def targeted(*, grid_images: int, cw_long=(9, 10000), ddn_steps=(100, 300, 1000)):
  """Tables 2-4's rows: Table 1's without DeepFool (untargeted only)."""
  return [
    s
    for s in table1(grid_images=grid_images, cw_long=cw_long, ddn_steps=ddn_steps)
    if s['attack'] != 'deepfool'
  ]


def defences(*, cw_long=(9, 10000), ddn_steps: int = 1000) -> list:
  """Tables 5-6's attacks: C&W 9×10000, DeepFool 100 and DDN 1000 (then their "All" row)."""
  return [carlini_wagner(*cw_long), deepfool(100), ddn(ddn_steps)]
