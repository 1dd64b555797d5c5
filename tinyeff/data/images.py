"""Image files -> uint8 NCHW arrays with Pillow: decoding, grey/RGB, resizing.

Shared by the image-folder dataset and ``tinyeff predict``. Pillow comes with matplotlib, so it is
always there; it is imported here only. A folder (or a batch of files) whose images are all grey
loads as 1 channel, otherwise everything is converted to RGB; ``image_size`` resizes every image to
a square with bilinear filtering (without it, all images must already share one size).
"""
import numpy as np

from tinyeff.errors import DataFormatError

GREY_MODES = ("1", "L", "I", "I;16", "F", "LA")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _open(path):
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable image ({exc}); remove it or convert it to PNG/JPEG") from exc


def _to_array(img, channels, size):
    from PIL import Image
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)                 # (C, H, W)


def read_images(paths, image_size=None, channels=None):
    """Decode ``paths`` into one uint8 (N, C, H, W) array.

    Args:
        image_size: int side (or (H, W)) to resize every image to; None keeps the files' size.
        channels: 1 or 3 to force; None picks 1 if every image is grey, else 3.
    Raises:
        DataFormatError: an unreadable file, or sizes that differ without ``image_size``.
    """
    images = [_open(p) for p in paths]
    if channels is None:
        channels = 1 if all(img.mode in GREY_MODES for img in images) else 3
    size = None if image_size is None else (tuple(image_size) if np.ndim(image_size) else (image_size,) * 2)
    if size is None:
        sizes = {img.size for img in images}
        if len(sizes) > 1:
            raise DataFormatError(f"images have {len(sizes)} different sizes (e.g. {sorted(sizes)[:3]} as WxH); "
                                  "pass --image-size N to resize them all to NxN")
    return np.stack([_to_array(img, channels, size) for img in images]) if images else \
        np.zeros((0, channels, *(size or (1, 1))), np.uint8)
