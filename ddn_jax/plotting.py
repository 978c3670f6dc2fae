"""Matplotlib figures of attack results: adversarial examples, robustness curves, sweeps.

Every function takes plain arrays (what `ddn_jax.attacks` and `ddn_jax.evaluation` return) and
returns a `matplotlib.figure.Figure` built without pyplot, so it works headless (save it with
``fig.savefig(path)``) and displays inline in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def _as_images(images: Any) -> np.ndarray:
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'Expected images of shape (N, H, W, 1 or 3), got {images.shape}.')
  return images


def _format(value: Any) -> str:
  return f'{value:g}' if isinstance(value, (int, float, np.number)) else str(value)


def _show(ax, image: np.ndarray, **kwargs: Any) -> None:
  if image.shape[-1] == 1:
    ax.imshow(image[..., 0], cmap=kwargs.pop('cmap', 'gray'), **kwargs)
  else:
    ax.imshow(np.clip(image, 0, 1), **kwargs)
  ax.set_xticks([])
  ax.set_yticks([])


def adversarial_examples(
  clean: Any,
  labels: Any,
  adversarials: Mapping[str, Any],
  predictions: Mapping[str, Any],
  *,
  max_images: int = 8,
  class_names: Sequence[str] | None = None,
  show_perturbations: bool = False,
) -> Figure:
  """A grid of clean images and their adversarial examples, as in Fig. 5 of the paper.

  The first row shows the clean images with their true label; each attack adds a row of
  adversarial images titled with the predicted class and the perturbation's L2 norm (a failed
  minimum-norm attack returns the clean image, shown with norm 0 and the correct class).

  Args:
    clean: ``(N, H, W, C)`` images in [0, 1].
    labels: ``(N,)`` true labels.
    adversarials: ``{attack name: (N, H, W, C) adversarial images}``.
    predictions: ``{attack name: (N,) predicted classes of its adversarials}``; may also have
      a ``'clean'`` entry with the predictions on the clean images.
    max_images: columns shown (the first ``max_images`` examples).
    class_names: names of the classes, default their indices.
    show_perturbations: add, under each attack's row, its perturbation ``adv - clean`` scaled
      to the largest absolute value in the row (red positive, blue negative).

  Returns:
    The figure.

  References:
    Rony et al., CVPR 2019, Fig. 5.
  """
  clean = _as_images(clean)
  labels = np.asarray(labels)
  num = min(max_images, len(clean))
  if num < 1:
    raise ValueError('No images to show.')
  name = (lambda c: class_names[int(c)]) if class_names is not None else (lambda c: str(int(c)))
  rows = [('clean', clean, None)]
  for attack, adv in adversarials.items():
    adv = _as_images(adv)
    if adv.shape != clean.shape:
      raise ValueError(f'{attack}: adversarials {adv.shape} do not match clean {clean.shape}.')
    rows.append((attack, adv, np.asarray(predictions[attack])))
    if show_perturbations:
      rows.append((f'{attack} δ', adv - clean, None))
  fig = Figure(figsize=(1.3 * num + 1.2, 1.45 * len(rows)), layout='constrained')
  axes = fig.subplots(len(rows), num, squeeze=False)
  for r, (title, images, preds) in enumerate(rows):
    axes[r, 0].set_ylabel(title, rotation=0, ha='right', va='center', fontsize=9)
    is_delta = title.endswith(' δ')
    scale = (float(np.abs(images[:num]).max()) or 1.0) if is_delta else 1.0
    for i in range(num):
      ax = axes[r, i]
      if is_delta:
        _show(ax, images[i].mean(-1, keepdims=True), cmap='seismic', vmin=-scale, vmax=scale)
      else:
        _show(ax, images[i], vmin=0, vmax=1)
      if r == 0:
        clean_pred = predictions.get('clean')
        text = f'label {name(labels[i])}'
        if clean_pred is not None:
          text += f'\npred {name(np.asarray(clean_pred)[i])}'
        ax.set_title(text, fontsize=8)
      elif preds is not None:
        l2 = float(np.linalg.norm((images[i] - clean[i]).ravel()))
        ax.set_title(f'pred {name(preds[i])}\nL2 {l2:.2f}', fontsize=8)
  return fig


def robust_accuracy(
  curves: Mapping[str, tuple[Any, Any]],
  *,
  title: str | None = None,
) -> Figure:
  """Accuracy under attack as a function of the L2 budget ε, one line per attack.

  Args:
    curves: ``{name: (epsilons, accuracies)}``, e.g. from the per-example minimal norms of
      each attack and of their per-example best (the "All" row).
    title: optional figure title.

  Returns:
    The figure.

  References:
    Rony et al., CVPR 2019, Fig. 4.
  """
  if not curves:
    raise ValueError('No curves to plot.')
  fig = Figure(figsize=(5.5, 3.8), layout='constrained')
  ax = fig.subplots()
  for name, (epsilons, accuracies) in curves.items():
    epsilons, accuracies = np.asarray(epsilons, float), np.asarray(accuracies, float)
    if epsilons.shape != accuracies.shape:
      raise ValueError(f'{name}: {epsilons.shape} epsilons but {accuracies.shape} accuracies.')
    style = {'color': 'black', 'linestyle': '--'} if name.lower() == 'all' else {}
    ax.plot(epsilons, accuracies, label=name, drawstyle='steps-post', **style)
  ax.set_xlabel('L2 budget ε')
  ax.set_ylabel('robust accuracy')
  ax.set_ylim(0, 1.02)
  ax.set_xlim(left=0)
  ax.grid(alpha=0.3)
  ax.legend()
  if title:
    ax.set_title(title)
  return fig


def sweep(
  rows: Sequence[Mapping[str, Any]],
  *,
  x: str,
  y: str,
  hue: str | Sequence[str] | None = None,
  log_x: bool = False,
  title: str | None = None,
) -> Figure:
  """A metric of a hyperparameter sweep against one hyperparameter, one line per ``hue`` value.

  Args:
    rows: one mapping per grid point, e.g. the rows of a sweep's results table.
    x: the column on the horizontal axis (a hyperparameter).
    y: the column on the vertical axis (e.g. ``'median_l2'``).
    hue: optional column whose values get separate lines (another hyperparameter), or several
      columns: one line per combination of their values.
    log_x: logarithmic horizontal axis (e.g. for learning rates).
    title: optional figure title.

  Returns:
    The figure.
  """
  if not rows:
    raise ValueError('No rows to plot.')
  hues = [] if hue is None else [hue] if isinstance(hue, str) else list(hue)
  for column in (x, y, *hues):
    if column not in rows[0]:
      raise ValueError(f'No column {column!r}; the rows have {sorted(rows[0])}.')
  groups: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
  for row in rows:
    groups.setdefault(tuple(row[h] for h in hues), []).append((float(row[x]), float(row[y])))
  fig = Figure(figsize=(5.5, 3.8), layout='constrained')
  ax = fig.subplots()
  for key, points in groups.items():
    points.sort()
    label = ', '.join(f'{h}={_format(v)}' for h, v in zip(hues, key)) or None
    ax.plot(*zip(*points), marker='o', label=label)
  ax.set_xlabel(x)
  ax.set_ylabel(y)
  if log_x:
    ax.set_xscale('log')
  ax.grid(alpha=0.3)
  if hues:
    ax.legend()
  if title:
    ax.set_title(title)
  return fig


def constant_histogram(
  constants: Mapping[str, Any],
  *,
  title: str | None = None,
) -> Figure:
  """Histograms of the best C&W constant per example, on a log2 axis, as in Fig. 2 of the paper.

  Args:
    constants: ``{model name: (M,) positive constants}``, e.g. the ``extras['best_const']``
      of a ``carlini_wagner_l2`` result, for the examples it broke.
    title: optional figure title.

  Returns:
    The figure: one step histogram per model over shared integer log2 bins.

  References:
    Rony et al., CVPR 2019, Fig. 2.
  """
  if not constants:
    raise ValueError('No constants to plot.')
  logs = {}
  for name, values in constants.items():
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values) & (values > 0)):
      raise ValueError(f'{name}: constants must be (M,) finite and > 0.')
    logs[name] = np.log2(values)
  every = np.concatenate(list(logs.values()))
  low = np.floor(every.min()) if every.size else -1
  high = np.ceil(every.max()) if every.size else 1
  bins = np.arange(low - 0.5, max(high, low + 1) + 1)
  fig = Figure(figsize=(5.5, 3.8), layout='constrained')
  ax = fig.subplots()
  for name, values in logs.items():
    ax.hist(values, bins=bins, histtype='step', linewidth=1.5, label=f'{name} ({len(values)})')
  ax.set_xlabel('log2 of the best constant C')
  ax.set_ylabel('examples')
  ax.grid(alpha=0.3)
  ax.legend()
  if title:
    ax.set_title(title)
  return fig
