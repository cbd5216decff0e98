"""Frozen backbones (VGG16/19 features, ADE20k ResNet50-dilated), their loading and feature losses."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from inpaint_cli.archs.base import count_parameters
from inpaint_cli.errors import InpaintError
from inpaint_cli.layers.perceptual import (
    FrozenBackbone,
    ResNet50Dilated,
    VGGFeatures,
    load_backbone,
    optional_backbone,
)
from inpaint_cli.losses.perceptual import feature_l1, feature_mse, gram_matrix, style_l1


def _save(module: nn.Module, path, extra: dict[str, torch.Tensor] | None = None, drop=()):
    state = {k: v.contiguous() for k, v in module.state_dict().items() if k not in drop}
    state.update(extra or {})
    save_file(state, str(path))
    return path


@pytest.mark.parametrize(
    ("build", "count"),
    [
        (lambda: VGGFeatures("vgg16"), 14_714_688),  # torchvision vgg16().features
        (lambda: VGGFeatures("vgg19"), 20_024_384),  # torchvision vgg19().features
        (ResNet50Dilated, 23_631_808),  # CSAIL resnet50dilated encoder (deep stem, no fc)
    ],
)
def test_backbone_parameter_counts(build, count):
    with torch.device("meta"):
        assert count_parameters(build()) == count


def test_vgg_names_follow_torchvision():
    vgg16, vgg19 = VGGFeatures("vgg16"), VGGFeatures("vgg19")
    # naoto's pool1..pool3 = features[:5], [5:10], [10:17]
    assert [vgg16.layer_index[n] for n in ("pool1", "pool2", "pool3")] == [4, 9, 16]
    aot_layers = ("relu1_1", "relu3_4", "relu4_4", "relu5_2")
    assert [vgg19.layer_index[n] for n in aot_layers] == [1, 17, 26, 31]
    conv_keys16 = [k for k in vgg16.state_dict() if k.endswith("weight")]
    assert conv_keys16[0] == "features.0.weight" and conv_keys16[-1] == "features.28.weight"
    assert len(vgg19.state_dict()) == 32 and "features.34.bias" in vgg19.state_dict()


def test_resnet50_dilated_layout_and_shapes():
    encoder = ResNet50Dilated()
    state = encoder.state_dict()
    assert tuple(state["conv3.weight"].shape) == (128, 64, 3, 3)
    assert tuple(state["layer1.0.downsample.0.weight"].shape) == (256, 128, 1, 1)
    assert tuple(state["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1)
    assert "bn1.running_var" in state and "fc.weight" not in state
    # CSAIL `_nostride_dilate(dilate=2/4)`: strided 3x3 -> stride 1 at half the dilation
    assert encoder.layer3[0].conv2.stride == (1, 1) and encoder.layer3[0].conv2.dilation == (1, 1)
    assert encoder.layer3[1].conv2.dilation == (2, 2) and encoder.layer3[1].conv2.padding == (2, 2)
    assert encoder.layer4[0].conv2.dilation == (2, 2) and encoder.layer4[2].conv2.dilation == (4, 4)
    assert encoder.layer4[0].downsample[0].stride == (1, 1)
    with torch.no_grad():
        outputs = encoder.eval()(torch.rand(1, 3, 64, 48))
    assert [tuple(o.shape) for o in outputs] == [
        (1, 256, 16, 12), (1, 512, 8, 6), (1, 1024, 8, 6), (1, 2048, 8, 6),
    ]


def test_vgg_file_loads_strictly_frozen_and_rejects_the_other_depth(tmp_path):
    torch.manual_seed(0)
    source = VGGFeatures("vgg16")
    # a torchvision file also holds the classifier: ignored
    path = _save(source, tmp_path / "vgg16.safetensors", {"classifier.0.weight": torch.zeros(4, 2)})
    loaded = load_backbone(VGGFeatures("vgg16"), path)
    assert torch.equal(loaded.features[28].weight, source.features[28].weight)
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not loaded.train().training  # stays in eval mode
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    loaded(image, ["relu2_1"])[0].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0  # gradients reach the input

    with pytest.raises(InpaintError, match=r"missing tensors: features\.16\.weight"):
        load_backbone(VGGFeatures("vgg19"), path)


def test_resnet_file_without_num_batches_tracked_loads(tmp_path):
    torch.manual_seed(0)
    source = ResNet50Dilated()
    nn.init.uniform_(source.bn1.running_mean)
    drop = [k for k in source.state_dict() if k.endswith("num_batches_tracked")]
    path = _save(source, tmp_path / "encoder.safetensors", drop=drop)
    loaded = load_backbone(ResNet50Dilated(), path)
    assert torch.equal(loaded.bn1.running_mean, source.bn1.running_mean)
    assert not loaded.training


class _TinyBackbone(FrozenBackbone):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"conv.weight": torch.zeros(2, 3, 3, 3)}, r"missing tensors: conv\.bias"),
        (
            {
                "conv.weight": torch.zeros(2, 3, 3, 3),
                "conv.bias": torch.zeros(2),
                "head.w": torch.zeros(1),
            },
            r"unexpected tensors: head\.w",
        ),
        (
            {"conv.weight": torch.zeros(2, 3, 5, 5), "conv.bias": torch.zeros(2)},
            r"wrong shapes: conv\.weight \(2, 3, 5, 5\) \(expected \(2, 3, 3, 3\)\)",
        ),
    ],
)
def test_mismatched_files_give_one_line_errors(tmp_path, state, message):
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    with pytest.raises(InpaintError, match=message) as error:
        load_backbone(_TinyBackbone(), path)
    assert "\n" not in str(error.value) and "_TinyBackbone" in str(error.value)


def test_missing_and_non_safetensors_files(tmp_path):
    with pytest.raises(InpaintError, match="no such file"):
        load_backbone(_TinyBackbone(), tmp_path / "absent.safetensors")
    bogus = tmp_path / "vgg16.safetensors"
    bogus.write_bytes(b"PK\x03\x04 not safetensors at all")
    with pytest.raises(InpaintError, match="not a readable safetensors file"):
        load_backbone(_TinyBackbone(), bogus)
    bogus_pth = tmp_path / "vgg16-397923af.pth"
    bogus_pth.write_bytes(b"PK\x03\x04 not a torch file at all")
    with pytest.raises(InpaintError, match="not a plain PyTorch state dict"):
        load_backbone(_TinyBackbone(), bogus_pth)


class _Payload:
    """Unpickling this would call `print`: what `weights_only=True` must refuse."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_pth_files_load_as_state_dicts_without_running_code(tmp_path):
    source = _TinyBackbone()
    torch.nn.init.normal_(source.conv.weight)
    good = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), good)
    loaded = load_backbone(_TinyBackbone(), good)
    assert torch.equal(loaded.conv.weight, source.conv.weight)
    evil = tmp_path / "evil.pth"
    torch.save({"conv.weight": source.conv.weight, "extra": _Payload()}, evil)
    with pytest.raises(InpaintError, match="not a plain PyTorch state dict"):
        load_backbone(_TinyBackbone(), evil)
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": source.state_dict()}, nested)
    with pytest.raises(InpaintError, match="not a state dict of named tensors"):
        load_backbone(_TinyBackbone(), nested)


def test_optional_backbone_warns_once_with_the_way_out():
    with pytest.warns(UserWarning, match=r"pconv: .*without the style loss; pass --backbone") as record:
        assert optional_backbone(_TinyBackbone, None, "pconv", "style loss", "VGG16") is None
    assert len(record) == 1


def test_gram_matrix_normalisation_by_hand():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C = 2, H = 1, W = 2
    # F F^T = [[5, 11], [11, 25]], divided by C H W = 4
    assert torch.allclose(gram_matrix(features), torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))


def test_feature_losses_zero_for_identical_images_positive_otherwise():
    torch.manual_seed(0)
    vgg = VGGFeatures("vgg16").eval()
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    layers = ("pool1", "pool2", "pool3")
    with torch.no_grad():
        fa, fa_again, fb = vgg(a, layers), vgg(a.clone(), layers), vgg(b, layers)
    for loss in (feature_l1, feature_mse, style_l1):
        assert loss(fa, fa_again).item() == 0.0
        assert loss(fa, fb).item() > 0.0
    assert [f.shape[-1] for f in fa] == [16, 8, 4]
