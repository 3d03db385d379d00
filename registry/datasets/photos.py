"""Real photographs for the information-retention measurement (no labels, no training).

``sample_photos`` — the natural photographs that scikit-image ships *inside its wheel*
(``skimage/data/*.png|jpg``; nothing is downloaded: they are read straight from the package's
data directory, never through ``skimage.data``'s fetcher). Twelve of them, chosen as real
camera images at native resolution (no drawings, charts or binary masks, and not moon.png,
an upscaled file whose 2×2 blocks are exact copies): portraits and objects (astronaut,
camera, chelsea, coffee, rocket, motorcycle_left, coins), astronomy (hubble_deep_field),
microscopy (ihc) and textures (brick, grass, gravel). ``root=DIR`` reads every
``*.png|*.jpg|*.jpeg|*.bmp|*.tif`` in a directory of your own instead.

``div2k`` — the 100 DIV2K validation images (Agustsson & Timofte, CVPR-W 2017; one of the
SoftPool paper's image sets) from ``<root>/DIV2K_valid_HR/*.png`` (default root
``$POOLREPRO_DATA/div2k``), centre-cropped to ``crop`` (default 600 = 6·100).

Protocol: each image is centre-cropped to ``crop``×``crop`` native pixels (default 288 = 6·48,
divisible by both pooling kernels 2 and 3; no resampling, so the crop keeps the photo's own
high frequencies) and converted to 3 channels (grey images repeated). The result is uint8
``[N, 3, crop, crop]`` in both splits (``train`` = ``test``; label = image index). An image
smaller than ``crop`` in either dimension is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from registry.datasets.base import DataBundle, DatasetError, Split, data_root

#: The bundled photographs (file names in ``skimage/data``), in a fixed order.
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
                  "motorcycle_left.png", "coins.png", "hubble_deep_field.jpg", "ihc.png",
                  "brick.png", "grass.png", "gravel.png")
_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _skimage_dir() -> Path:
    try:
        import skimage
    except ImportError as e:
        raise DatasetError("sample_photos needs scikit-image (`pip install scikit-image`, the "
                           "'retention' extra); it ships the photographs in its wheel") from e
    return Path(skimage.__file__).resolve().parent / "data"


def _read(path: Path) -> torch.Tensor:
    """uint8 ``[3, H, W]`` from an image file (grey repeated, alpha dropped)."""
    from skimage import io

    try:
        a = io.imread(str(path))
    except Exception as e:  # a corrupt or unreadable file
        raise DatasetError(f"cannot read image {path}: {e}") from e
    t = torch.from_numpy(a)
    if t.dtype != torch.uint8:
        raise DatasetError(f"{path} is {t.dtype}, expected 8-bit images")
    if t.ndim == 2:
        t = t[None].expand(3, -1, -1)
    elif t.ndim == 3:
        t = t[..., :3].permute(2, 0, 1)
        if t.shape[0] == 1:
            t = t.expand(3, -1, -1)
    else:
        raise DatasetError(f"{path} has shape {tuple(a.shape)}; expected H×W or H×W×C")
    return t.contiguous()


def centre_crop(img: torch.Tensor, size: int, name: str) -> torch.Tensor:
    h, w = img.shape[-2:]
    if h < size or w < size:
        raise DatasetError(f"image {name} is {h}×{w}, smaller than crop={size}; pass a smaller "
                           f"dataset_args.crop")
    top, left = (h - size) // 2, (w - size) // 2
    return img[..., top:top + size, left:left + size]


def sample_photos(root: str | None = None, crop: int = 288, seed: int = 0,
                  train_subset: int | None = None, test_subset: int | None = None,
                  verify: bool = True) -> DataBundle:
    """Photographs as uint8 ``[N, 3, crop, crop]`` (scikit-image's bundled photos, or
    every image in ``root``). ``train_subset``/``test_subset``: the first n images."""
    if crop < 8:
        raise DatasetError(f"crop must be ≥ 8 pixels, got {crop}")
    if root is None:
        d = _skimage_dir()
        files = [d / f for f in SKIMAGE_PHOTOS]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f"scikit-image's data directory {d} lacks {missing}; reinstall "
                               f"scikit-image (the photos ship in its wheel)")
        source = f"scikit-image {_skimage_version()} bundled photographs"
    else:
        d = Path(root).expanduser()
        if not d.is_dir():
            raise DatasetError(f"no directory {d}: pass dataset_args.root = a folder of images "
                               f"(e.g. DIV2K_valid_HR)")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in _EXTS)
        if not files:
            raise DatasetError(f"no images ({', '.join(sorted(_EXTS))}) in {d}")
        source = str(d)
    n = test_subset or train_subset
    files = files[:n] if n else files
    x = torch.stack([centre_crop(_read(f), crop, f.name) for f in files])
    y = torch.arange(len(files))
    split = Split(x, y)
    return DataBundle(
        name="sample_photos", num_classes=len(files), in_chans=3, input_size=(crop, crop),
        mean=(0.5,) * 3, std=(0.25,) * 3, train=split, test=split,
        provenance={"source": source, "files": [f.name for f in files],
                    "derived": f"centre crop {crop}x{crop}, grey repeated to 3 channels"},
    )


def div2k(root: str | None = None, crop: int = 600, seed: int = 0,
          train_subset: int | None = None, test_subset: int | None = None,
          verify: bool = True) -> DataBundle:
    """DIV2K's validation HR images (user copy), centre crops ``crop``×``crop``."""
    d = data_root(root, "div2k") / "DIV2K_valid_HR"
    if not d.is_dir():
        raise DatasetError(f"no DIV2K validation images at {d}. Expected <root>/DIV2K_valid_HR/"
                           f"0801.png … 0900.png (DIV2K_valid_HR.zip, extracted); pass "
                           f"dataset_args.root or set $POOLREPRO_DATA")
    bundle = sample_photos(str(d), crop, seed, train_subset, test_subset, verify)
    bundle.name = "div2k"
    return bundle


def _skimage_version() -> str:
    import skimage

    return skimage.__version__
