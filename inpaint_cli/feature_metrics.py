"""Metrics on network features: LPIPS per image; FID, P-IDS and U-IDS per set of images.

- FID (Heusel et al., NeurIPS 2017): the Fréchet distance between Gaussians fitted to the
  Inception pool3 features of the real and the completed images, as pytorch-fid computes it.
- P-IDS / U-IDS (Zhao et al., Co-Mod-GAN, ICLR 2021): a linear SVM separates real from completed
  features; U-IDS is its misclassification rate, P-IDS the share of pairs (real i, completion i)
  in which the completion scores as more real. Higher is better, 0.5 is indistinguishable.
- LPIPS v0.1 (Zhang et al., CVPR 2018): `inpaint_cli.layers.lpips`.

Backbone weights come only from files the user gives (`Backbones`), never from the network; the
published `.pth` files are read with `torch.load(weights_only=True)`, safetensors conversions too.
The real images' Inception features (`InceptionFeatures.of_real_images`) are cached on disk
(`Backbones.feature_cache`, `inpaint eval`'s is $INPAINT_HOME/cache/features) under a key of
everything that determines them; a cache file is checked against its key, never trusted.
All statistics are float64 and use torch alone (no SciPy, no scikit-learn). The set-level scores
are biased at small n (FID upwards, the IDS downwards): compare them only at equal n.

    real = inception.of_real_images(originals); fake = inception(completions)
    frechet_distance(real, fake); inception_discriminative_scores(real, fake)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from inpaint_cli import __version__
from inpaint_cli.errors import InpaintError

if TYPE_CHECKING:
    import torch

    from inpaint_cli.layers.lpips import LPIPSNet

BACKBONES_ENV = "INPAINT_BACKBONES"
PER_IMAGE_FEATURE_METRICS = ("lpips",)
SET_METRICS = ("fid", "pids", "uids")
HIGHER_IS_BETTER = frozenset({"pids", "uids"})
SMALL_SET = 10_000
"""Below this many images a set-level value is far from its large-n limit (the papers use 10k-36.5k
images; two samples of one distribution of 2048-d features score FID 157 and P-/U-IDS 0 at 2k)."""

FID_FEATURES = 2048
FEATURE_CACHE_FORMAT = 1  # the cache files' layout: one float64 tensor `features`, metadata `key`
#: the sources that compute the features (the loader, the network, this module): part of the cache key
FEATURE_SOURCES = ("feature_metrics.py", "layers/inception.py", "layers/perceptual.py")
PACKAGE_DIR = Path(__file__).resolve().parent

SVM_C = 1.0  # LinearSVC's default, as in Co-Mod-GAN's metric
SVM_MAX_NEWTON_STEPS = 200
SVM_GRADIENT_TOLERANCE = 1e-10


class BackboneFile(NamedTuple):
    """A published weights file: its name, where it is published, what needs it, the option that
    names it directly."""

    filename: str
    url: str
    used_by: str
    option: str


BACKBONE_FILES: dict[str, BackboneFile] = {
    "inception": BackboneFile(
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "FID, P-IDS and U-IDS", "--inception",
    ),
    "alex": BackboneFile(
        "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "LPIPS (alex)", "--lpips-backbone",
    ),
    "vgg": BackboneFile(
        "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
        "LPIPS (vgg)", "--lpips-backbone",
    ),
    "alex-linear": BackboneFile(
        "alex.pth", "the lpips package (pip install lpips: lpips/weights/v0.1/alex.pth)",
        "LPIPS (alex)", "--lpips-linear",
    ),
    "vgg-linear": BackboneFile(
        "vgg.pth", "the lpips package (pip install lpips: lpips/weights/v0.1/vgg.pth)",
        "LPIPS (vgg)", "--lpips-linear",
    ),
}


@dataclass(frozen=True)
class Backbones:
    """Where the metric networks' weights are and how to run them.

    A file named directly (`inception`, `lpips_backbone`, `lpips_linear`) wins; otherwise it is
    looked up by its published name in `directory` (default `$INPAINT_BACKBONES`), or under the
    same stem with `.safetensors`. Files are only looked up when a metric needs them."""

    directory: Path | None = None
    inception: Path | None = None
    lpips_backbone: Path | None = None
    lpips_linear: Path | None = None
    lpips_net: LPIPSNet = "alex"
    device: str = "cpu"
    batch_size: int = 16
    feature_cache: Path | None = None  # folder caching the real images' Inception features (None: none)

    def path(self, role: str) -> Path:
        """The file for `role` ("inception", "alex", "vgg", "alex-linear", "vgg-linear")."""
        explicit = {"inception": self.inception, "alex": self.lpips_backbone,
                    "vgg": self.lpips_backbone, "alex-linear": self.lpips_linear,
                    "vgg-linear": self.lpips_linear}[role]
        if explicit is not None:
            return Path(explicit)
        wanted = BACKBONE_FILES[role]
        directory = self.directory or os.environ.get(BACKBONES_ENV)
        if directory:
            for name in (wanted.filename, Path(wanted.filename).stem + ".safetensors"):
                candidate = Path(directory, name)
                if candidate.is_file():
                    return candidate
        where = f"in {directory}" if directory else f"(no --backbones DIR, ${BACKBONES_ENV} unset)"
        raise InpaintError(
            f"{wanted.used_by} need {wanted.filename}, not found {where}: get it from {wanted.url}"
            f" and put it in --backbones DIR, or name it with {wanted.option} FILE (a .safetensors"
            " conversion by `inpaint convert` works too)"
        )


def _torch_batches(
    images: Sequence[np.ndarray], batch_size: int, device: str
) -> Iterator[torch.Tensor]:
    """uint8 H x W x 3 arrays -> float32 [0, 1] N x 3 x H x W batches on `device`."""
    import torch

    for start in range(0, len(images), batch_size):
        chunk = np.stack(images[start : start + batch_size])
        tensor = torch.from_numpy(chunk).to(device).permute(0, 3, 1, 2).float() / 255.0
        yield tensor


def feature_cache_dir() -> Path:
    """$INPAINT_HOME/cache/features: where `inpaint eval` caches the real images' features."""
    from inpaint_cli.weights import inpaint_home

    return inpaint_home() / "cache" / "features"


class InceptionFeatures:
    """pytorch-fid's pool3 features of uint8 images: `features(images) -> N x 2048` float64;
    `of_real_images` the same through the on-disk cache (`Backbones.feature_cache`)."""

    def __init__(self, backbones: Backbones) -> None:
        from inpaint_cli.layers.inception import FIDInceptionV3
        from inpaint_cli.layers.perceptual import load_backbone

        self.device = backbones.device
        self.batch_size = backbones.batch_size
        self.weights = backbones.path("inception")
        self.cache = backbones.feature_cache
        self.network = load_backbone(FIDInceptionV3(), self.weights).to(self.device)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            chunks = [self.network(batch).double().cpu().numpy()
                      for batch in _torch_batches(images, self.batch_size, self.device)]
        return np.concatenate(chunks) if chunks else np.zeros((0, FID_FEATURES))

    def cache_key(self, images: Sequence[np.ndarray]) -> str:
        """sha256 of everything the features of `images` depend on: each image's shape and pixels
        in order, the weights file's sha256, the code (the package's version, the sources that
        compute features, torch's version), the device type and the batch size."""
        import torch

        from inpaint_cli.convert import sha256_of

        sources = hashlib.sha256()
        for name in FEATURE_SOURCES:
            sources.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes() + b"\0")
        header = {"format": FEATURE_CACHE_FORMAT, "version": __version__, "sources": sources.hexdigest(),
                  "torch": torch.__version__, "device": torch.device(self.device).type,
                  "batch_size": self.batch_size, "weights": sha256_of(self.weights)}
        digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
        for image in images:
            pixels = np.ascontiguousarray(image)
            digest.update(f"{pixels.dtype.str}{pixels.shape}".encode() + hashlib.sha256(pixels).digest())
        return digest.hexdigest()

    def of_real_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """`self(images)`, read from the cache where an earlier run computed them under the same
        key (`cache_key`) and written there otherwise (atomically: a temporary file, renamed).
        A cache file that is unreadable, holds another key, or not N x 2048 finite float64 is
        ignored and replaced; an unwritable cache folder only costs the computation."""
        if self.cache is None:
            return self(images)
        key = self.cache_key(images)
        path = Path(self.cache) / f"inception-{key[:32]}.safetensors"
        cached = _read_features(path, key, len(images))
        if cached is not None:
            return cached
        features = self(images)
        _write_features(path, key, features)
        return features


def _read_features(path: Path, key: str, count: int) -> np.ndarray | None:
    """The features in cache file `path` if it is readable and holds exactly what `key` names."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as file:
            if (file.metadata() or {}).get("key") != key or set(file.keys()) != {"features"}:
                return None
            features = file.get_tensor("features")
    except (OSError, ValueError, SafetensorError):
        return None
    if features.dtype != np.float64 or features.shape != (count, FID_FEATURES) or not np.isfinite(features).all():
        return None
    return features


def _write_features(path: Path, key: str, features: np.ndarray) -> None:
    import torch

    from inpaint_cli.checkpoint import atomic_save_safetensors

    try:
        atomic_save_safetensors({"features": torch.from_numpy(features)}, path, {"key": key})
    except OSError:
        pass


class LPIPSDistances:
    """LPIPS v0.1 between paired uint8 images: `distances(originals, completions) -> N` float64."""

    def __init__(self, backbones: Backbones) -> None:
        from inpaint_cli.layers.lpips import LPIPS, LPIPSLinearLayers, build_lpips_backbone
        from inpaint_cli.layers.perceptual import load_backbone

        net = backbones.lpips_net
        if net not in ("alex", "vgg"):
            raise InpaintError(f"unknown LPIPS network {net!r} (choose alex or vgg)")
        self.device = backbones.device
        self.batch_size = backbones.batch_size
        backbone = load_backbone(build_lpips_backbone(net), backbones.path(net))
        linear = load_backbone(LPIPSLinearLayers(net), backbones.path(f"{net}-linear"))
        self.network = LPIPS(net, backbone, linear).to(self.device).eval()

    def __call__(self, originals: Sequence[np.ndarray], completions: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        if len(originals) != len(completions):
            raise InpaintError("LPIPS needs as many completions as originals")
        with torch.inference_mode():
            chunks = [
                self.network(first, second).double().cpu().numpy()
                for first, second in zip(
                    _torch_batches(originals, self.batch_size, self.device),
                    _torch_batches(completions, self.batch_size, self.device),
                )
            ]
        return np.concatenate(chunks) if chunks else np.zeros(0)


# ------------------------------------------------------------------------------------- FID


def _as_float64(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    import torch

    return torch.as_tensor(np.asarray(features), dtype=torch.float64)


def gaussian_factors(features: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean m and a factor B of the covariance S = B^T B (N - 1 denominator, as `np.cov`) of
    N x D features, float64: B = (X - m) / sqrt(N - 1) when N <= D, else the transposed Cholesky
    factor of S (S^(1/2) from eigh when S is singular)."""
    import torch

    x = _as_float64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InpaintError(f"a set-level metric needs at least 2 images, got {x.shape[0]}")
    mean = x.mean(0)
    centred = (x - mean) / (x.shape[0] - 1) ** 0.5
    if x.shape[0] <= x.shape[1]:
        return mean, centred
    covariance = centred.T @ centred
    lower, info = torch.linalg.cholesky_ex(covariance)
    if int(info) == 0:
        return mean, lower.T
    values, vectors = torch.linalg.eigh(covariance)
    return mean, (vectors * values.clamp(min=0).sqrt()).T


def frechet_distance(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor) -> float:
    """FID of two feature sets (N x 2048 Inception pool3 for FID proper): pytorch-fid's
    `||m1 - m2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))` with np.cov's covariances.

    With S = B^T B, the eigenvalues of S1 S2 are the squared singular values of C = B1 B2^T, so
    `tr((S1 S2)^(1/2))` is the sum of the square roots of the eigenvalues of the symmetric
    C C^T (or C^T C, the smaller): no matrix square root, no complex round-off, no eps retry as
    in pytorch-fid, and below D images an N x N problem that is exact for the singular
    covariances."""
    import torch

    mean1, factor1 = gaussian_factors(real)
    mean2, factor2 = gaussian_factors(fake)
    cross = factor1 @ factor2.T
    gram = cross @ cross.T if cross.shape[0] <= cross.shape[1] else cross.T @ cross
    trace_root = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt().sum()
    difference = mean1 - mean2
    distance = (difference @ difference + factor1.pow(2).sum() + factor2.pow(2).sum()
                - 2 * trace_root)
    return float(distance)


# ----------------------------------------------------------------------------- P-IDS / U-IDS


def fit_linear_svm(features: torch.Tensor, labels: torch.Tensor, c: float = SVM_C) -> torch.Tensor:
    """scikit-learn's `LinearSVC(dual=False)`, solved to optimality: minimise over v = (w, b)
    `1/2 ||v||^2 + c sum_i max(0, 1 - y_i (w.x_i + b))^2` (the intercept is a constant feature 1,
    regularised like the weights, as in liblinear), y in {+1, -1}. The objective is strictly
    convex and piecewise quadratic; Newton steps with the generalised Hessian
    `I + 2c Z_A^T Z_A` (A: the points inside the margin) and backtracking reach the optimum in a
    few steps. Returns v (D + 1 values, the intercept last)."""
    import torch

    z = torch.cat([features, torch.ones_like(features[:, :1])], 1)
    y = labels.to(z.dtype)

    def objective(v: torch.Tensor) -> torch.Tensor:
        slack = (1 - y * (z @ v)).clamp(min=0)
        return 0.5 * v @ v + c * slack @ slack

    v = torch.zeros(z.shape[1], dtype=z.dtype)
    first_norm = None
    for _ in range(SVM_MAX_NEWTON_STEPS):
        margin = y * (z @ v)
        active = margin < 1
        z_active = z[active]
        gradient = v + 2 * c * z_active.T @ ((margin[active] - 1) * y[active])
        norm = float(gradient.norm())
        first_norm = first_norm or max(norm, 1.0)
        if norm <= SVM_GRADIENT_TOLERANCE * first_norm:
            break
        hessian = 2 * c * z_active.T @ z_active
        hessian.diagonal().add_(1.0)
        step = -torch.cholesky_solve(gradient[:, None], torch.linalg.cholesky(hessian))[:, 0]
        current = objective(v)
        slope = float(gradient @ step)
        size = 1.0
        while objective(v + size * step) > current + 1e-4 * size * slope:
            size /= 2
            if size < 1e-12:  # round-off level: v is the optimum to machine precision
                return v
        v = v + size * step
    return v


class DiscriminativeScores(NamedTuple):
    pids: float
    uids: float


def inception_discriminative_scores(real: np.ndarray, fake: np.ndarray) -> DiscriminativeScores:
    """P-IDS and U-IDS of paired feature sets (`fake[i]` is the completion of `real[i]`), as
    Co-Mod-GAN's metric: a linear SVM fitted on all of them (real = 1), in-sample; U-IDS =
    1 - accuracy (real predicted iff the decision value is > 0), P-IDS = mean(d(fake_i) > d(real_i))."""
    import torch

    real_t, fake_t = _as_float64(real), _as_float64(fake)
    if real_t.shape != fake_t.shape or real_t.ndim != 2 or len(real_t) < 1:
        raise InpaintError("P-IDS/U-IDS need paired real and completed feature sets of one shape")
    features = torch.cat([real_t, fake_t])
    labels = torch.cat([torch.ones(len(real_t)), -torch.ones(len(fake_t))]).double()
    v = fit_linear_svm(features, labels)
    decision = features @ v[:-1] + v[-1]
    predicted_real = decision > 0
    accuracy = float((predicted_real == (labels > 0)).double().mean())
    decision_real, decision_fake = decision[: len(real_t)], decision[len(real_t) :]
    pids = float((decision_fake > decision_real).double().mean())
    return DiscriminativeScores(pids=pids, uids=1.0 - accuracy)
