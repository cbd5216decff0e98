"""FID, LPIPS, P-IDS and U-IDS against pytorch-fid 0.3.0, lpips 0.1.4 and Co-Mod-GAN's metric
(scikit-learn's LinearSVC(dual=False)) without their real weights.

The recipes of docs/metrics.md §4: each tensor of a weights file is drawn from
`np.random.RandomState(crc32(key))`, so the file is fixed whatever the key order; the tests build
the files from our modules' key layout in the published formats (`.pth` state dicts). The expected
numbers were measured by running the reference packages on the same files in a scratch venv:
pytorch-fid's `InceptionV3([3])` with its `load_state_dict_from_url` patched to return the file,
`lpips.LPIPS(net=..., pnet_rand=True)` with the backbone and linear layers copied in, and
`LinearSVC(dual=False)` fitted on [real; fake] with labels 1 / 0 as in Co-Mod-GAN.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_cli.errors import InpaintError
from inpaint_cli.feature_metrics import (
    Backbones,
    fit_linear_svm,
    frechet_distance,
    inception_discriminative_scores,
)
from inpaint_cli.layers.inception import FIDInceptionV3
from inpaint_cli.layers.lpips import (
    LPIPS,
    LPIPS_CHANNELS,
    LPIPSLinearLayers,
    build_lpips_backbone,
)
from inpaint_cli.layers.perceptual import load_backbone

FC_SHAPES = {"fc.weight": (1008, 2048), "fc.bias": (1008,)}
#: stand-ins for the classifier tensors of torchvision's files (ignored by the loader)
CLASSIFIER_STAND_IN = {"classifier.6.weight": (10, 4), "classifier.6.bias": (10,)}


def _rs(key: str) -> np.random.RandomState:
    return np.random.RandomState(zlib.crc32(key.encode("utf-8")))


def _normal(key: str, shape: tuple[int, ...], scale: float) -> torch.Tensor:
    values = _rs(key).standard_normal(math.prod(shape)).reshape(shape) * scale
    return torch.from_numpy(values.astype(np.float32))


def _uniform(key: str, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    values = _rs(key).uniform(low, high, math.prod(shape)).reshape(shape)
    return torch.from_numpy(values.astype(np.float32))


def _fan_in_normal(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    return _normal(key, shape, math.sqrt(2 / math.prod(shape[1:])))


def inception_file_state() -> dict[str, torch.Tensor]:
    """pytorch-fid's file layout (our keys without num_batches_tracked, plus fc), seeded."""
    shapes = {key: tuple(value.shape) for key, value in FIDInceptionV3().state_dict().items()
              if not key.endswith("num_batches_tracked")}
    shapes.update(FC_SHAPES)
    draws = {
        "conv.weight": lambda key, shape: _fan_in_normal(key, shape),
        "bn.weight": lambda key, shape: _uniform(key, shape, 0.5, 1.5),
        "bn.bias": lambda key, shape: _uniform(key, shape, -0.2, 0.2),
        "bn.running_mean": lambda key, shape: _uniform(key, shape, -0.2, 0.2),
        "bn.running_var": lambda key, shape: _uniform(key, shape, 0.5, 2.0),
        "fc.weight": lambda key, shape: _normal(key, shape, 0.01),
        "fc.bias": lambda key, shape: _uniform(key, shape, -0.1, 0.1),
    }
    return {key: next(draw for end, draw in draws.items() if key.endswith(end))(key, shape)
            for key, shape in shapes.items()}


def torchvision_file_state(net: str) -> dict[str, torch.Tensor]:
    """torchvision's AlexNet / VGG16 `features.*` layout, seeded, with classifier stand-ins."""
    shapes = {key: tuple(value.shape) for key, value in build_lpips_backbone(net).state_dict().items()}
    shapes.update(CLASSIFIER_STAND_IN)
    return {key: _fan_in_normal(key, shape) if key.endswith("weight")
            else _uniform(key, shape, -0.1, 0.1) for key, shape in shapes.items()}


def lpips_linear_state(net: str) -> dict[str, torch.Tensor]:
    """lpips' `alex.pth` / `vgg.pth` layout, seeded U(0, 0.1) (the real weights are >= 0 too)."""
    return {f"lin{index}.model.1.weight": _uniform(f"lin{index}.model.1.weight", (1, c, 1, 1), 0.0, 0.1)
            for index, c in enumerate(LPIPS_CHANNELS[net])}


@pytest.fixture(scope="module")
def backbones_dir(tmp_path_factory) -> Path:
    """A --backbones folder with seeded files under the published names."""
    folder = tmp_path_factory.mktemp("backbones")
    torch.save(inception_file_state(), folder / "pt_inception-2015-12-05-6726825d.pth")
    for net, name in (("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")):
        torch.save(torchvision_file_state(net), folder / name)
        torch.save(lpips_linear_state(net), folder / f"{net}.pth")
    return folder


# ---------------------------------------------------------------------------------- loading


def test_generator_matches_the_recipe():
    assert zlib.crc32(b"Conv2d_1a_3x3.conv.weight") == 882806835
    first = _fan_in_normal("Conv2d_1a_3x3.conv.weight", (32, 3, 3, 3)).flatten()[:3]
    assert first.tolist() == pytest.approx([-0.13828339, -0.18111275, -0.33279967], abs=1e-7)
    running_var = _uniform("Mixed_7c.branch_pool.bn.running_var", (192,), 0.5, 2.0)[:3]
    assert running_var.tolist() == pytest.approx([1.5230718, 1.2483392, 1.3651224], abs=1e-7)


def test_inception_loader_maps_every_key_of_the_file(backbones_dir):
    state = torch.load(backbones_dir / "pt_inception-2015-12-05-6726825d.pth", weights_only=True)
    assert len(state) == 472  # 94 BasicConv2d x 5 + fc
    assert sum(v.numel() for v in state.values()) == 23_885_392
    assert sum(v.numel() for k, v in state.items() if not k.startswith("fc.")) == 21_820_000
    network = load_backbone(FIDInceptionV3(), backbones_dir / "pt_inception-2015-12-05-6726825d.pth")
    loaded = network.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    assert {k for k in loaded if not k.endswith("num_batches_tracked")} == {
        k for k in state if not k.startswith("fc.")}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loaders_map_every_key(backbones_dir, net):
    backbones = Backbones(directory=backbones_dir, lpips_net=net)
    backbone = load_backbone(build_lpips_backbone(net), backbones.path(net))
    linear = load_backbone(LPIPSLinearLayers(net), backbones.path(f"{net}-linear"))
    expected = torchvision_file_state(net)
    assert backbone.state_dict().keys() == {k for k in expected if not k.startswith("classifier.")}
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert len(backbone.state_dict()) == {"alex": 10, "vgg": 26}[net]  # METRICS: 10 of 16, 26 of 32
    assert linear.state_dict().keys() == lpips_linear_state(net).keys()


def test_a_missing_backbone_is_one_line_naming_the_file_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("INPAINT_BACKBONES", raising=False)
    with pytest.raises(InpaintError) as error:
        Backbones(directory=tmp_path).path("inception")
    message = str(error.value)
    assert "\n" not in message
    assert "pt_inception-2015-12-05-6726825d.pth" in message and "github.com/mseitzer/pytorch-fid" in message
    assert "--inception" in message and "inpaint convert" in message
    monkeypatch.setenv("INPAINT_BACKBONES", str(tmp_path))
    (tmp_path / "alexnet-owt-7be5be79.safetensors").write_bytes(b"")
    assert Backbones().path("alex") == tmp_path / "alexnet-owt-7be5be79.safetensors"
    assert Backbones(lpips_linear=Path("mine.pth")).path("alex-linear") == Path("mine.pth")


# ------------------------------------------------------------------------------- Inception

# pytorch-fid pool3 of RandomState(2024).random_sample((4, 3, 512, 384)) with the seeded file,
# float64: sum | L2 | f[0] | f[1] | f[1000] | f[2047] per image (our float64 output was
# bit-identical to pytorch-fid's, and float32 too).
POOL3_REFERENCE = [
    (1167.511763854, 43.989325391, 0.004626962, 0.774697823, 4.775505927, 0.929509815),
    (1165.184291075, 43.899381047, 0.003298410, 0.761371611, 4.771506342, 0.909160638),
    (1165.198248691, 43.912904814, 0.003235809, 0.751447258, 4.758219514, 0.918041274),
    (1164.502290683, 43.877402783, 0.003507748, 0.731075549, 4.772468020, 0.903063418),
]


def test_inception_pool3_equals_pytorch_fid(backbones_dir):
    network = load_backbone(FIDInceptionV3(), backbones_dir / "pt_inception-2015-12-05-6726825d.pth")
    images = torch.from_numpy(np.random.RandomState(2024).random_sample((4, 3, 512, 384)).astype(np.float32))
    with torch.inference_mode():
        features = network(images).double()
    assert features.shape == (4, 2048)
    for row, (total, norm, f0, f1, f1000, f2047) in zip(features, POOL3_REFERENCE):
        assert float(row.sum()) == pytest.approx(total, rel=2e-6)
        assert float(row.norm()) == pytest.approx(norm, rel=2e-6)
        assert row[[0, 1, 1000, 2047]].tolist() == pytest.approx([f0, f1, f1000, f2047], abs=5e-5)


# ------------------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero():
    features = np.maximum(np.random.RandomState(5).standard_normal((148, 2048)) * 0.5 + 0.3, 0)
    assert abs(frechet_distance(features, features)) < 1e-6  # of tr S = 306 (pytorch-fid: -4e-5)
    few = np.random.RandomState(6).standard_normal((300, 16))  # the N > D path
    assert abs(frechet_distance(few, few)) < 1e-9


def _with_moments(rs: np.random.RandomState, n: int, mean: np.ndarray, variances: np.ndarray):
    """n samples whose sample mean is `mean` and sample covariance (N - 1) is diag(variances)."""
    centred = rs.standard_normal((n, len(mean)))
    centred -= centred.mean(0)
    orthonormal, _ = np.linalg.qr(centred)  # columns span centred vectors: zero mean
    return mean + math.sqrt(n - 1) * orthonormal * np.sqrt(variances)


@pytest.mark.parametrize(("n", "dims"), [(30, 64), (400, 64)])  # below and above the dimension
def test_fid_equals_the_closed_form_for_diagonal_gaussians(n, dims):
    # 24 dimensions vary, the others are constant: covariances diag(v, 0), commuting, so
    # FID = |m1 - m2|^2 + sum (sqrt(v1) - sqrt(v2))^2
    rs = np.random.RandomState(8)
    active = 24
    mean1, mean2 = rs.standard_normal(dims), rs.standard_normal(dims)
    var1, var2 = rs.uniform(0.1, 3, active), rs.uniform(0.1, 3, active)
    real, fake = np.tile(mean1, (n, 1)), np.tile(mean2, (n, 1))
    real[:, :active] = _with_moments(rs, n, mean1[:active], var1)
    fake[:, :active] = _with_moments(rs, n, mean2[:active], var2)
    closed = np.sum((mean1 - mean2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(real, fake) == pytest.approx(closed, rel=1e-8)


def test_fid_equals_pytorch_fid_on_correlated_gaussians():
    # METRICS recipe A: pytorch-fid's calculate_frechet_distance gives 22.618972537450787
    rs = np.random.RandomState(0)
    x = rs.standard_normal((500, 64))
    mixing = np.eye(64) + 0.1 * rs.standard_normal((64, 64))
    y = (0.8 * rs.standard_normal((600, 64)) + 0.25) @ mixing
    assert frechet_distance(x, y) == pytest.approx(22.618972537450787, rel=1e-12)


@pytest.mark.slow
def test_fid_equals_pytorch_fid_below_the_dimension():
    # METRICS recipe B (1000 images, 2048-d): pytorch-fid 280.1481553953729 (1e-6: SciPy-dependent)
    rs = np.random.RandomState(1)
    x = np.maximum(0.5 * rs.standard_normal((1000, 2048)) + 0.3, 0)
    y = np.maximum(0.5 * rs.standard_normal((1000, 2048)) + 0.35, 0)
    assert frechet_distance(x, y) == pytest.approx(280.1481553953729, rel=1e-6)


# ----------------------------------------------------------------------------------- LPIPS


def _lpips_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    rs = np.random.RandomState(7)
    in0 = rs.uniform(-1, 1, (2, 3, 64, 96))
    in1 = np.clip(in0 + 0.3 * rs.standard_normal((2, 3, 64, 96)), -1, 1)
    # lpips takes [-1, 1]; ours [0, 1]
    return tuple((torch.from_numpy(x.astype(np.float32)) + 1) / 2 for x in (in0, in1))


def _lpips(net: str, backbones_dir: Path, linear: Path | None = None) -> LPIPS:
    backbones = Backbones(directory=backbones_dir, lpips_net=net)
    return LPIPS(
        net,
        load_backbone(build_lpips_backbone(net), backbones.path(net)),
        load_backbone(LPIPSLinearLayers(net), linear or backbones.path(f"{net}-linear")),
    ).eval()


# lpips 0.1.4 in float64 on the seeded backbone and the seeded linear layers above (ours was
# within 2e-11 in float64 and 2e-9 in float32)
LPIPS_SEEDED_REFERENCE = {
    "alex": [0.015234421464544696, 0.01529757545220663],
    "vgg": [0.01907801439940033, 0.019181351190109185],
}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_lpips_package(backbones_dir, net):
    image0, image1 = _lpips_inputs()
    with torch.inference_mode():
        distances = _lpips(net, backbones_dir)(image0, image1)
    assert distances.tolist() == pytest.approx(LPIPS_SEEDED_REFERENCE[net], abs=1e-6)


# lpips 0.1.4 with its shipped v0.1 linear layers (METRICS §4.3), float64
LPIPS_SHIPPED_REFERENCE = {
    "alex": ([0.0177540055403101, 0.017415040199096968],
             [0.006676437346457465, 0.004915363189408359, 0.0025756966444787904,
              0.0020164596862666507, 0.0015700486736988353]),
    "vgg": ([0.03295895471715281, 0.032989759514258435],
            [0.01710225894505772, 0.008605771295356888, 0.0037687691469068044,
             0.0023186462588686905, 0.0011635090709627026]),
}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_with_the_shipped_linear_layers(backbones_dir, net):
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        pytest.skip("the lpips package (source of the published linear layers) is not installed")
    shipped = Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    metric = _lpips(net, backbones_dir, linear=shipped).double()
    image0, image1 = (image.double() for image in _lpips_inputs())
    with torch.inference_mode():
        per_layer = metric(image0, image1, per_layer=True)
    distances, layers = LPIPS_SHIPPED_REFERENCE[net]
    assert per_layer.sum(1).tolist() == pytest.approx(distances, abs=1e-9)
    assert per_layer[0].tolist() == pytest.approx(layers, abs=1e-9)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_of_identical_images_is_zero_and_the_distance_is_symmetric(backbones_dir, net):
    image0, image1 = _lpips_inputs()
    metric = _lpips(net, backbones_dir)
    with torch.inference_mode():
        assert metric(image0, image0).tolist() == [0.0, 0.0]
        forward, backward = metric(image0, image1), metric(image1, image0)
    assert torch.allclose(forward, backward, rtol=0, atol=1e-7)
    assert bool((forward > 1e-3).all())


# --------------------------------------------------------------------------- P-IDS / U-IDS


def test_ids_equal_co_mod_gan_on_overlapping_gaussians():
    # METRICS recipe C: LinearSVC(dual=False) misclassifies 280 of 800 (U-IDS 0.35) and ranks
    # 23 of 400 completions above their originals (P-IDS 0.0575); intercept 0.12362603996275648
    rs = np.random.RandomState(0)
    real = rs.standard_normal((400, 64))
    fake = real + 0.5 * rs.standard_normal((400, 64)) + 0.1
    scores = inception_discriminative_scores(real, fake)
    assert (scores.uids, scores.pids) == (0.35, 0.0575)
    v = fit_linear_svm(torch.from_numpy(np.concatenate([real, fake])),
                       torch.cat([torch.ones(400), -torch.ones(400)]).double())
    # liblinear stops at a relative gradient of 1e-4; ours at the optimum
    assert float(v[-1]) == pytest.approx(0.12362603996275648, rel=1e-5)
    assert float(v[:-1].norm()) == pytest.approx(0.38298273497837143, rel=1e-5)


def test_ids_of_separable_sets_are_zero():
    rs = np.random.RandomState(4)
    real = rs.standard_normal((200, 8)) + 5.0
    fake = rs.standard_normal((200, 8)) - 5.0
    assert tuple(inception_discriminative_scores(real, fake)) == (0.0, 0.0)


def test_ids_of_indistinguishable_sets_are_chance():
    # identical features: the optimum is w = 0, b = 0, every decision value 0 -> all predicted
    # fake (not > 0): half misclassified, and no completion scores strictly above its original
    features = np.random.RandomState(9).standard_normal((50, 6))
    scores = inception_discriminative_scores(features, features.copy())
    assert scores.uids == 0.5 and scores.pids == 0.0


@pytest.mark.slow
def test_ids_of_two_small_samples_of_one_distribution_are_separable():
    # METRICS recipe D: 1000 + 1000 images of 2048-d features are separable: U-IDS = P-IDS = 0
    rs = np.random.RandomState(3)
    real = np.maximum(0.5 * rs.standard_normal((1000, 2048)) + 0.3, 0)
    fake = np.maximum(0.5 * rs.standard_normal((1000, 2048)) + 0.3, 0)
    assert tuple(inception_discriminative_scores(real, fake)) == (0.0, 0.0)


# ------------------------------------------------------------------------------- evaluate


class _Oracle:
    """Returns the original photo (found by its known pixels): a perfect fill."""

    label = "oracle"

    def __init__(self, originals: list[np.ndarray]) -> None:
        self.originals = originals

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return next(o.copy() for o in self.originals if np.array_equal(o[~hole], image[~hole]))


class _GreyFill:
    label = "grey"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        filled = image.copy()
        filled[hole] = 128
        return filled


def test_evaluate_reports_lpips_per_image_and_set_level_values_with_their_counts(backbones_dir):
    from inpaint_cli.evaluate import (
        evaluate,
        render_tables,
        result_from_json,
        result_to_csv,
        result_to_json,
        result_to_markdown,
    )

    rs = np.random.RandomState(0)
    originals = [rs.randint(0, 256, (32, 32, 3)).astype(np.uint8) for _ in range(3)]
    images = [(f"{index}.png", image) for index, image in enumerate(originals)]
    result = evaluate(
        [_Oracle(originals), _GreyFill()], images, ["box"], ["psnr", "lpips", "fid", "pids", "uids"],
        backbones=Backbones(directory=backbones_dir), repeat=2,
    )
    assert result.metrics == ["psnr", "lpips", "fid", "pids", "uids", "hole_l1"]
    assert list(result.sections) == ["box", "overall"] and result.repeat == 2
    for section in ("box", "overall"):
        oracle, grey = result.sections[section]["oracle"], result.sections[section]["grey"]
        assert (oracle["lpips"].mean, oracle["lpips"].stderr, oracle["lpips"].n) == (0.0, 0.0, 6)
        assert grey["lpips"].mean > 0.01 and grey["lpips"].stderr > 0 and grey["lpips"].n == 6
        assert oracle["hole_l1"].n == 6  # 3 images x 2 mask draws
        for metric in ("fid", "pids", "uids"):
            assert oracle[metric].stderr is None and oracle[metric].n == 6
        assert abs(oracle["fid"].mean) < 1e-3 < grey["fid"].mean
        assert 0.0 <= grey["pids"].mean <= 1.0 and 0.0 <= grey["uids"].mean <= 1.0
    # one mask set: the pooled "overall" set is the section's
    assert result.sections["overall"]["grey"]["fid"] == result.sections["box"]["grey"]["fid"]

    assert result_from_json(result_to_json(result)) == result
    rows = list(csv.DictReader(io.StringIO(result_to_csv(result))))
    fid_row = next(r for r in rows if r["section"] == "box" and r["method"] == "grey" and r["metric"] == "fid")
    assert fid_row["stderr"] == "" and fid_row["n"] == "6"
    assert float(fid_row["mean"]) == result.sections["box"]["grey"]["fid"].mean
    markdown = result_to_markdown(result).splitlines()
    assert markdown[0] == "| masks | method | PSNR (dB) | LPIPS | FID | P-IDS | U-IDS | hole L1 | n |"
    assert markdown[3].endswith(" | 6 |")
    tables = render_tables(result)
    assert tables[0].title == "box (n = 6)"
    assert "n = 6 < 10,000 images are biased" in str(tables[0].caption)


def test_repeat_draws_new_masks_per_image_and_saves_each_draw(tmp_path):
    from inpaint_cli.evaluate import evaluate
    from inpaint_cli.masks import draw_mask, eval_rng

    rs = np.random.RandomState(1)
    originals = [rs.randint(0, 256, (24, 24, 3)).astype(np.uint8) for _ in range(2)]
    images = [("a.b.png", originals[0]), ("c.png", originals[1])]
    result = evaluate([_GreyFill()], images, ["box"], ["l1"], seed=5, save_dir=tmp_path, repeat=3)
    assert result.sections["box"]["grey"]["l1"].n == 6
    saved = sorted(p.name for p in (tmp_path / "box" / "grey").iterdir())
    assert saved == ["a.b.png", "a.b~1.png", "a.b~2.png", "c.png", "c~1.png", "c~2.png"]
    # draw 2 of image c used the protocol mask of seed 5 + 2
    hole = draw_mask("box", eval_rng(7, 1, "box"), 24, 24)
    written = np.asarray(Image.open(tmp_path / "box" / "grey" / "c~2.png"))
    assert (written[hole] == 128).all() and np.array_equal(written[~hole], originals[1][~hole])
    with pytest.raises(InpaintError, match="--repeat must be at least 1"):
        evaluate([_GreyFill()], images, ["box"], ["l1"], repeat=0)


# ---------------------------------------------------------------------- real-feature cache


def _count_inception_runs(monkeypatch) -> list[int]:
    """Counts the Inception network's runs (the number of images of each)."""
    from inpaint_cli.feature_metrics import InceptionFeatures

    runs: list[int] = []
    run = InceptionFeatures.__call__

    def counted(self, images):
        runs.append(len(images))
        return run(self, images)

    monkeypatch.setattr(InceptionFeatures, "__call__", counted)
    return runs


def test_a_second_evaluation_reads_the_real_features_from_inpaint_home(backbones_dir, tmp_path, monkeypatch):
    from inpaint_cli.evaluate import evaluate_methods

    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    data = tmp_path / "eval"
    data.mkdir()
    rs = np.random.RandomState(3)
    for index in range(3):
        Image.fromarray(rs.randint(0, 256, (32, 32, 3)).astype(np.uint8)).save(data / f"{index}.png")
    runs = _count_inception_runs(monkeypatch)

    def fid() -> float:
        result, _ = evaluate_methods(["telea"], [], data, ["box"], ["fid"], size=32, device="cpu",
                                     backbones=Backbones(directory=backbones_dir))
        return result.sections["box"]["telea"]["fid"].mean

    first = fid()
    assert runs == [3, 3]  # the originals, then telea's fills
    cached = list((tmp_path / "home" / "cache" / "features").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".safetensors"
    assert fid() == first
    assert runs == [3, 3, 3]  # only the fills: the originals' features came from the cache
    # the cached features are the computed ones: an evaluation without the cache scores the same
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "elsewhere"))
    assert fid() == first and runs == [3, 3, 3, 3, 3]


@pytest.fixture(scope="module")
def inception(backbones_dir):
    from inpaint_cli.feature_metrics import InceptionFeatures

    return InceptionFeatures(Backbones(directory=backbones_dir))


def _caching_in(inception, folder: Path):
    """The same loaded network, caching in `folder`."""
    cached = copy.copy(inception)
    cached.cache = folder
    return cached


def test_a_changed_image_or_backbone_file_misses_the_cache(inception, backbones_dir, tmp_path, monkeypatch):
    from inpaint_cli.feature_metrics import InceptionFeatures

    rs = np.random.RandomState(4)
    images = [rs.randint(0, 256, (16, 16, 3)).astype(np.uint8) for _ in range(2)]
    cached = _caching_in(inception, tmp_path)
    runs = _count_inception_runs(monkeypatch)
    features = cached.of_real_images(images)
    assert np.array_equal(cached.of_real_images(images), features) and runs == [2]
    changed = [images[0], images[1].copy()]
    changed[1][0, 0, 0] ^= 1
    assert not np.array_equal(cached.of_real_images(changed), features) and runs == [2, 2]
    # another weights file (one tensor scaled): its features, not the cached ones
    state = inception_file_state()
    state["Conv2d_1a_3x3.conv.weight"] *= 1.5
    other = tmp_path / "other"
    other.mkdir()
    torch.save(state, other / "pt_inception-2015-12-05-6726825d.pth")
    other_inception = InceptionFeatures(Backbones(directory=other, feature_cache=tmp_path))
    other_features = other_inception.of_real_images(images)
    assert runs == [2, 2, 2] and not np.allclose(other_features, features)
    assert len(list(tmp_path.glob("inception-*.safetensors"))) == 3


def test_a_corrupt_or_mismatched_cache_file_is_ignored_and_rewritten(inception, tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    rs = np.random.RandomState(5)
    images = [rs.randint(0, 256, (16, 16, 3)).astype(np.uint8) for _ in range(2)]
    cached = _caching_in(inception, tmp_path)
    runs = _count_inception_runs(monkeypatch)
    features = cached.of_real_images(images)
    (path,) = tmp_path.glob("inception-*.safetensors")
    key = cached.cache_key(images)
    wrong = {
        "garbage": lambda: path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json"),
        "truncated": lambda: path.write_bytes(path.read_bytes()[:-100]),
        "another key": lambda: save_file({"features": features + 1}, str(path), metadata={"key": "0" * 64}),
        "wrong shape": lambda: save_file({"features": features[:1]}, str(path), metadata={"key": key}),
        "not finite": lambda: save_file({"features": features * np.nan}, str(path), metadata={"key": key}),
    }
    for number, spoil in enumerate(wrong.values(), start=2):
        spoil()
        assert np.array_equal(cached.of_real_images(images), features) and len(runs) == number
        assert np.array_equal(cached.of_real_images(images), features) and len(runs) == number  # rewritten
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
