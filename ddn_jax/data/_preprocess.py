"""Image preprocessing shared by the TFDS and offline sources."""

from __future__ import annotations

import numpy as np


def _pil():
  try:
    from PIL import Image  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('Decoding PNG/JPEG images needs Pillow: `pip install pillow`.') from e
  return Image


def to_float_images(images):
  """Maps integer (uint8) images to float32 in [0, 1]; float images are cast to float32.

  Works on NumPy and JAX arrays alike (traced ones included) and keeps the array's type.
  """
  if np.issubdtype(images.dtype, np.integer):
    return images.astype(np.float32) / 255.0
  return images.astype(np.float32)


def decode_image(path) -> np.ndarray:
  """Decodes a PNG/JPEG file to a uint8 array of shape (H, W, C)."""
  image = np.asarray(_pil().open(path))
  return image[..., None] if image.ndim == 2 else image


def resize_and_center_crop(
  image: np.ndarray, *, resize_to: int = 342, crop_to: int = 299
) -> np.ndarray:
  """Resizes the short side to `resize_to`, then crops the centre square.

  This is the ImageNet evaluation preprocessing of the paper (Section 4:
  Inception V3 inputs of 299x299 cropped from 342-pixel images).

  Args:
    image: uint8 array of shape (H, W, 3).
    resize_to: length of the short side after the bilinear resize.
    crop_to: side of the square centre crop.

  Returns:
    A uint8 array of shape (crop_to, crop_to, 3).

  References:
    Rony et al., 2019, "Decoupling Direction and Norm for Efficient
    Gradient-Based L2 Adversarial Attacks and Defenses", Section 4.
  """
  height, width = image.shape[:2]
  scale = resize_to / min(height, width)
  new_w, new_h = max(crop_to, round(width * scale)), max(crop_to, round(height * scale))
  image_lib = _pil()
  pil_image = image_lib.fromarray(image).resize((new_w, new_h), image_lib.BILINEAR)
  top, left = (new_h - crop_to) // 2, (new_w - crop_to) // 2
  return np.asarray(pil_image)[top : top + crop_to, left : left + crop_to]
