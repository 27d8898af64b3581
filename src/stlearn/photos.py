"""Real photographs for denoising: loading, splits by photograph, patches, noise models, metrics, classical denoisers.

Data. Only image files inside installed wheels are read: the photographs in
scikit-image's ``skimage/data/`` directory (read from the package's own files,
never through ``skimage.data``'s download helpers) and scikit-learn's two
sample images. Each is converted to grayscale in ``[0, 1]`` (float64) and
downscaled (anti-aliased) so that its shorter side is at most ``max_side``
pixels, then cropped to a multiple of the patch grid.

Splits. :func:`split_photos` assigns whole photographs to the training,
validation and test parts: no part ever sees a patch of another part's
photograph. Patches lie on a grid of non-overlapping ``patch x patch`` cells;
the id of a cell is unique per (photograph, row, column) (:func:`cell_id`), and
every set of patches or crops is recorded with those ids for the audit of
:mod:`stlearn.streams` (``space="photos"``).

Noise. Additive white Gaussian noise with ``sigma`` on the 0-255 scale
(:func:`gaussian_noise`; not clipped), and a Poisson (shot-noise, low-light)
model with ``peak`` expected photons at white (:func:`poisson_noise`), the
stress test no network is trained on. Each draw comes from a stream.

Metrics and classical denoisers. PSNR (peak 1, outputs clipped to ``[0, 1]``)
and SSIM (Wang et al., 2004, scikit-image's implementation), and the classical
denoisers of scikit-image (total variation, wavelet shrinkage, non-local
means, bilateral filtering) and BM3D (the ``bm3d`` package, when installed),
each with one strength parameter chosen on validation crops from a grid
(:data:`CLASSICAL`).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import streams
from .data import Samples
from .streams import Stream, as_stream, member_normals
from .validation import ParameterError, check_float, check_int

Tensor = torch.Tensor

# Photographs shipped in scikit-image's wheel (file names in skimage/data/) and scikit-learn's two sample images.
# Left out: synthetic or binary images (chessboard, phantom, horse, logo, color), a motion-blurred one
# (clock_motion), the right view of the motorcycle stereo pair (a near copy of the left one) and tiny files.
SKIMAGE_PHOTOS = {
    "astronaut": "astronaut.png", "brick": "brick.png", "camera": "camera.png", "cell": "cell.png",
    "chelsea": "chelsea.png", "coffee": "coffee.png", "coins": "coins.png", "grass": "grass.png",
    "gravel": "gravel.png", "hubble_deep_field": "hubble_deep_field.jpg", "ihc": "ihc.png", "moon": "moon.png",
    "motorcycle_left": "motorcycle_left.png", "page": "page.png", "retina": "retina.jpg", "rocket": "rocket.jpg",
    "text": "text.png",
}
SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}
PHOTO_NAMES = sorted([*SKIMAGE_PHOTOS, *SKLEARN_PHOTOS])
CELLS_PER_PHOTO = 1_000_000  # ids: photo index * CELLS_PER_PHOTO + row * 1000 + column


def _read(name: str) -> np.ndarray:
    if name in SKIMAGE_PHOTOS:
        import skimage.io

        path = importlib.resources.files("skimage") / "data" / SKIMAGE_PHOTOS[name]
        with importlib.resources.as_file(path) as p:
            if not p.exists():
                raise FileNotFoundError(f"{p} is not in the installed scikit-image wheel (nothing is downloaded)")
            return skimage.io.imread(str(p))
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return load_sample_image(SKLEARN_PHOTOS[name])
    raise ParameterError(f"photo must be one of {PHOTO_NAMES}; got {name!r}")


def load_photo(name: str, max_side: int = 256, multiple: int = 16) -> np.ndarray:
    """Photograph ``name``: grayscale, float64 in ``[0, 1]``, shorter side <= ``max_side``, sides multiples of
    ``multiple``.

    Read from the installed wheel only (nothing is downloaded).
    """
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    max_side = check_int("max_side", max_side, low=16)
    multiple = check_int("multiple", multiple, low=1)
    img = _read(name)
    if img.ndim == 3:
        img = rgb2gray(img[..., :3])
    else:
        img = img.astype(np.float64) / (255.0 if img.dtype == np.uint8 else 1.0)
    scale = min(1.0, max_side / min(img.shape))
    if scale < 1.0:
        img = rescale(img, scale, anti_aliasing=True)
    h, w = (s // multiple * multiple for s in img.shape)
    if h < multiple or w < multiple:
        raise ParameterError(f"{name} is smaller than one {multiple}-pixel cell after scaling")
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.clip(img[top:top + h, left:left + w], 0.0, 1.0)


def load_photos(names: Sequence[str] = PHOTO_NAMES, max_side: int = 256, multiple: int = 16) -> dict[str, np.ndarray]:
    return {n: load_photo(n, max_side, multiple) for n in names}


@dataclass(frozen=True)
class PhotoSplit:
    """Names of the training, validation and test photographs (disjoint)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def check_disjoint(self) -> None:
        parts = [set(self.train), set(self.val), set(self.test)]
        if any(a & b for i, a in enumerate(parts) for b in parts[i + 1:]):
            raise AssertionError(f"photographs shared between parts: {self}")


def split_photos(n_val: int, n_test: int, rng: Stream | int, names: Sequence[str] = PHOTO_NAMES) -> PhotoSplit:
    """A random partition of ``names`` into training, ``n_val`` validation and ``n_test`` test photographs."""
    names = sorted(names)
    n_val = check_int("n_val_photos", n_val, low=1)
    n_test = check_int("n_test_photos", n_test, low=1)
    if n_val + n_test > len(names) - 1:
        raise ParameterError(f"n_val_photos + n_test_photos must be <= {len(names) - 1} (one photograph is left for "
                             f"training); got {n_val} + {n_test}")
    order = torch.randperm(len(names), generator=as_stream(rng).generator()).tolist()
    shuffled = [names[i] for i in order]
    split = PhotoSplit(tuple(sorted(shuffled[n_val + n_test:])), tuple(sorted(shuffled[:n_val])),
                       tuple(sorted(shuffled[n_val:n_val + n_test])))
    split.check_disjoint()
    return split


def cell_id(name: str, row: int, col: int) -> int:
    """Integer id of the grid cell (row, col) of photograph ``name``, unique per (photograph, cell)."""
    return PHOTO_NAMES.index(name) * CELLS_PER_PHOTO + row * 1000 + col


def grid_cells(img: np.ndarray, size: int) -> list[tuple[int, int]]:
    """The (row, column) indices of the non-overlapping ``size x size`` cells of ``img``."""
    return [(r, c) for r in range(img.shape[0] // size) for c in range(img.shape[1] // size)]


def patches(photos: dict[str, np.ndarray], names: Sequence[str], size: int, n: int | None, rng: Stream | int,
            name: str = "patches", exclude: Sequence[int] = ()) -> tuple[Tensor, np.ndarray]:
    """``n`` random non-overlapping ``size x size`` patches of the photographs ``names`` (all cells if ``n=None``),
    none of them a cell whose id is in ``exclude``.

    Returns flat rows ``(n, size*size)`` (float64) and their cell ids; the set is recorded for the audit.
    """
    size = check_int("patch", size, low=2)
    taken = set(int(i) for i in exclude)
    cells = [(p, r, c) for p in names for r, c in grid_cells(photos[p], size) if cell_id(p, r, c) not in taken]
    if n is not None:
        n = check_int("n_patches", n, low=1, high=len(cells))
        pick = torch.randperm(len(cells), generator=as_stream(rng).generator())[:n].sort().values.tolist()
        cells = [cells[i] for i in pick]
    rows = np.stack([photos[p][r * size:(r + 1) * size, c * size:(c + 1) * size].ravel() for p, r, c in cells])
    ids = np.array([cell_id(p, r, c) for p, r, c in cells], dtype=np.int64)
    streams.record(name, ids, space="photos")
    return torch.from_numpy(rows), ids


def center_crops(photos: dict[str, np.ndarray], names: Sequence[str], size: int, cell: int = 16,
                 name: str = "crops") -> tuple[Tensor, np.ndarray]:
    """The central ``size x size`` crop (aligned to the ``cell`` grid) of each photograph: ``(n, size, size)``.

    Records the ids of the grid cells the crops cover (``space="photos"``).
    """
    size = check_int("crop", size, low=cell)
    if size % cell:
        raise ParameterError(f"crop must be a multiple of the patch size {cell}; got {size}")
    crops, ids = [], []
    for p in names:
        img = photos[p]
        if min(img.shape) < size:
            raise ParameterError(f"crop must be <= the shorter side of {p} ({min(img.shape)}); got {size}")
        r0 = (img.shape[0] - size) // 2 // cell
        c0 = (img.shape[1] - size) // 2 // cell
        crops.append(img[r0 * cell:r0 * cell + size, c0 * cell:c0 * cell + size])
        k = size // cell
        ids += [cell_id(p, r0 + i, c0 + j) for i in range(k) for j in range(k)]
    ids = np.array(ids, dtype=np.int64)
    streams.record(name, ids, space="photos")
    return torch.from_numpy(np.stack(crops)), ids


def tiles(images: Tensor, size: int) -> Tensor:
    """Cut images ``(..., n, H, W)`` into non-overlapping ``size x size`` tiles: flat rows ``(..., n*k, size*size)``."""
    *lead, n, h, w = images.shape
    t = images.reshape(*lead, n, h // size, size, w // size, size).movedim(-3, -2)
    return t.reshape(*lead, n * (h // size) * (w // size), size * size)


# --------------------------------------------------------------------------- noise models
def gaussian_noise(clean: Tensor, sigma: float | Tensor, rng: Stream | int) -> Tensor:
    """``clean + sigma / 255 * e``, ``e ~ N(0, 1)`` from ``rng`` (float64; not clipped).

    ``sigma`` is one level (0-255 scale, >= 0) or a tensor that broadcasts against ``clean``
    (one level per member, for instance); the same ``e`` serves every level.
    """
    if not isinstance(sigma, Tensor):
        sigma = check_float("sigma", sigma, low=0.0)
    elif bool((sigma < 0).any()):
        raise ParameterError(f"sigma must be >= 0 (0-255 scale); got {sigma.tolist()}")
    e = torch.randn(clean.shape, generator=as_stream(rng).generator(), dtype=torch.float64)
    return clean.double() + (sigma / 255.0) * e


def poisson_noise(clean: Tensor, peak: float, rng: Stream | int) -> Tensor:
    """Shot noise ``Poisson(peak * clean) / peak``: ``peak`` expected photons at white (lower: darker, noisier)."""
    peak = check_float("peak", peak, low=0.0, low_open=True)
    return torch.poisson(peak * clean.double().clamp_min(0), generator=as_stream(rng).generator()) / peak


class FreshNoise(Samples):
    """Training samples whose every minibatch gets fresh Gaussian noise: noise augmentation on the clean inputs.

    The trainer of :mod:`stlearn.train` draws minibatches with :meth:`rows`; here each call redraws the noise
    of the rows it returns (``sigma`` per member, 0-255 scale) from the generator of ``rng``, or, with a list
    ``rng`` of one stream per member, each member's from its own (a run's noise then does not depend on
    which runs share its ensemble). ``noisy`` holds one fixed noisy copy, used only to log the training loss.
    """

    def __init__(self, clean: Tensor, y: Tensor, sigma: Tensor, rng: Stream | int | list, noisy: Tensor):
        object.__setattr__(self, "clean", clean)
        object.__setattr__(self, "noisy", noisy)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "sigma", sigma)
        per_member = isinstance(rng, (list, tuple))
        if per_member and (clean.dim() < 3 or len(rng) != clean.shape[0]):
            raise ParameterError(f"rng must be one stream or one per member ({clean.shape[0]}); got {len(rng)}")
        object.__setattr__(self, "generator", [as_stream(r).generator() for r in rng] if per_member
                           else as_stream(rng).generator())

    def rows(self, idx: Tensor) -> Samples:
        clean = self.clean.index_select(self.clean.dim() - 2, idx)
        y = self.y.index_select(self.y.dim() - 2, idx)
        if isinstance(self.generator, list):
            e = member_normals(self.generator, clean.shape[1:]).to(clean)
        else:
            e = torch.randn(clean.shape, generator=self.generator, dtype=torch.float64).to(clean)
        return Samples(clean, clean + (self.sigma / 255.0).to(clean) * e, y)


# --------------------------------------------------------------------------- metrics
def psnr(denoised: Tensor | np.ndarray, clean: Tensor | np.ndarray) -> np.ndarray:
    """PSNR in dB of each image (peak 1; the denoised image is clipped to ``[0, 1]``): shape ``denoised.shape[:-2]``."""
    d = np.clip(np.asarray(denoised, dtype=np.float64), 0.0, 1.0)
    c = np.asarray(clean, dtype=np.float64)
    mse = ((d - c) ** 2).mean(axis=(-2, -1))
    return -10.0 * np.log10(np.maximum(mse, 1e-12))


def ssim(denoised: Tensor | np.ndarray, clean: Tensor | np.ndarray) -> np.ndarray:
    """SSIM (Wang et al., 2004; scikit-image, data range 1) of each image, denoised clipped to ``[0, 1]``."""
    from skimage.metrics import structural_similarity

    d = np.clip(np.asarray(denoised, dtype=np.float64), 0.0, 1.0)
    c = np.broadcast_to(np.asarray(clean, dtype=np.float64), d.shape)
    flat_d, flat_c = d.reshape(-1, *d.shape[-2:]), c.reshape(-1, *c.shape[-2:])
    out = [structural_similarity(a, b, data_range=1.0) for a, b in zip(flat_d, flat_c)]
    return np.array(out).reshape(d.shape[:-2])


# --------------------------------------------------------------------------- classical denoisers
def _tv(img: np.ndarray, s: float, c: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(img, weight=c * s)


def _wavelet(img: np.ndarray, s: float, c: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(img, sigma=c * s, method="BayesShrink", mode="soft", rescale_sigma=True)


def _nlm(img: np.ndarray, s: float, c: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(img, h=c * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6)


def _bilateral(img: np.ndarray, s: float, c: float) -> np.ndarray:
    from skimage.restoration import denoise_bilateral

    return denoise_bilateral(img, sigma_color=c * s, sigma_spatial=1.5, win_size=7)


def _bm3d(img: np.ndarray, s: float, c: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(img, sigma_psd=c * s))


@dataclass(frozen=True)
class Classical:
    """A classical denoiser ``fn(image, sigma, c)`` whose strength is ``c`` times the noise level (pixels in [0, 1]).

    ``factors(budget)``: the ``budget`` values of ``c`` tried on validation, geometric between ``low`` and ``high``.
    ``strip``: denoise the images of one call side by side as one strip (for BM3D, whose every call has a
    start-up cost of about a second); the strip's borders between images are the only difference.
    """

    name: str
    fn: Callable[[np.ndarray, float, float], np.ndarray]
    low: float
    high: float
    strip: bool = False

    def factors(self, budget: int) -> list[float]:
        budget = check_int("budget", budget, low=1)
        if budget == 1:
            return [float(np.sqrt(self.low * self.high))]
        return [float(v) for v in np.geomspace(self.low, self.high, budget)]

    def __call__(self, images: np.ndarray, sigma: float, c: float) -> np.ndarray:
        """Denoise images ``(..., H, W)`` at noise level ``sigma`` (0-255 scale) with strength factor ``c``."""
        sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        c = check_float("c", c, low=0.0, low_open=True)
        imgs = np.asarray(images, dtype=np.float64)
        flat = imgs.reshape(-1, *imgs.shape[-2:])
        if self.strip:
            out = self.fn(np.concatenate(list(flat), axis=1), sigma / 255.0, c)
            return np.stack(np.split(out, len(flat), axis=1)).reshape(imgs.shape)
        return np.stack([self.fn(im, sigma / 255.0, c) for im in flat]).reshape(imgs.shape)


CLASSICAL = {
    "TV": Classical("TV", _tv, 0.5, 2.0),
    "wavelet": Classical("wavelet", _wavelet, 0.5, 1.5),
    "NLM": Classical("NLM", _nlm, 0.5, 1.2),
    "bilateral": Classical("bilateral", _bilateral, 0.6, 3.0),
    "BM3D": Classical("BM3D", _bm3d, 0.75, 1.25, strip=True),
}


def bm3d_available() -> bool:
    """Whether the ``bm3d`` package is installed (it runs offline: a compiled library inside its wheel)."""
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return False
    return True


def tune_classical(method: Classical, noisy: np.ndarray, clean: np.ndarray, sigma: float,
                   budget: int) -> tuple[float, float]:
    """The factor ``c`` of ``method`` with the best mean validation PSNR over ``budget`` tries, and that PSNR."""
    scores = [(float(psnr(method(noisy, sigma, c), clean).mean()), c) for c in method.factors(budget)]
    best, c = max(scores)
    return c, best
