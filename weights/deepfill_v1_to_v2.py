"""Start a DeepFill v2 from a trained DeepFill v1: the warm start of the bundled DeepFill v2.

DeepFill v2 is DeepFill v1's generator with every convolution gated (docs/architectures.md §3, §4):
a gated block of width 2C is C feature filters and C gate filters, `ELU(features) * sigmoid(gates)`.
v2's `two-thirds` config (cnum 32) therefore has the feature widths of v1's `half` (cnum 16), and a
v1 network maps onto it:

- feature filters = v1's filters; gate filters = 0 with bias 0, so every gate is sigmoid(0) = 1/2;
- every convolution fed by a gated block takes twice v1's weights, undoing the 1/2 exactly
  (contextual attention is linear in its values and matches normalised patches, so the halving
  passes through it);
- stage 2 sees the 3-channel composite in v2, `cat(composite, ones, mask)` in v1: the ones
  channel's weights join the bias (exact away from the border), the mask channel's are dropped;
- v2 squashes its outputs with tanh where v1 clips them.

The last two are the only departures, so the mapped network starts near v1's fills and v2's own
recipe (`inpaint train --init-weights`) takes it from there. The file records v1's training as its
lineage and step 0 of its own:

    python weights/deepfill_v1_to_v2.py weights/deepfill-v1-half.safetensors runs/dfv2-from-v1.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from inpaint_cli.archs.deepfill_v1 import DeepFillV1
from inpaint_cli.archs.deepfill_v2 import CONFIGS, DeepFillV2
from inpaint_cli.checkpoint import export_release, load_release
from inpaint_cli.registry import get_arch
from inpaint_cli.train.state import release_lineage

V2_CONFIG = "two-thirds"
#: the first convolution of each stage sees the image, not a gated block's halved output
STAGE_INPUTS = ("coarse.conv1.conv", "hallucination.xconv1.conv", "attention_encoder.pmconv1.conv")
#: stage 2's first convolutions: v1 feeds them cat(composite, ones, mask), v2 the composite alone
REFINE_INPUTS = STAGE_INPUTS[1:]
#: the plain RGB convolutions at the end of each stage (no gate)
RGB_OUTPUTS = ("coarse_rgb", "refine_rgb")


@torch.no_grad()
def map_v1_to_v2(v1: DeepFillV1, v2: DeepFillV2) -> None:
    """Load `v1`'s weights into `v2` (whose feature widths must be v1's) as the module docstring says."""
    v1_convs = dict(v1.named_modules())
    for name, module in v2.named_modules():
        if not isinstance(module, torch.nn.Conv2d):
            continue
        source = v1_convs[name]
        weight, bias = source.weight.clone(), source.bias.clone()
        if name in REFINE_INPUTS:
            bias += weight[:, 3].sum(dim=(1, 2))  # the ones channel
            weight = weight[:, :3]
        if name not in STAGE_INPUTS:
            weight *= 2  # the gates' sigmoid(0) = 1/2 on the block before
        if name in RGB_OUTPUTS:
            module.weight.copy_(weight)
            module.bias.copy_(bias)
            continue
        features = weight.shape[0]
        if module.weight.shape[1:] != weight.shape[1:] or module.weight.shape[0] != 2 * features:
            raise ValueError(f"{name}: v2 {tuple(module.weight.shape)} does not hold v1 {tuple(weight.shape)} features")
        module.weight.zero_()
        module.bias.zero_()
        module.weight[:features] = weight
        module.bias[:features] = bias


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("v1", help="a DeepFill v1 release file of the half config")
    parser.add_argument("out", type=Path, help="the DeepFill v2 release file to write")
    args = parser.parse_args()
    v1, _, v1_config, metadata = load_release(args.v1, "deepfill-v1", "half")
    v2 = DeepFillV2(CONFIGS[V2_CONFIG])
    map_v1_to_v2(v1, v2)
    info = {
        "step": "0",
        "image_size": metadata.get("image_size", ""),
        "batch": metadata.get("batch", ""),
        "seed": metadata.get("seed", ""),
        "data": metadata.get("data", ""),
        "hardware": metadata.get("hardware", ""),
        "wall_time_s": "0",
        "license": metadata.get("license", ""),
        "training_json": json.dumps({"mapped_from": f"deepfill-v1 {v1_config} (weights/deepfill_v1_to_v2.py)",
                                     "warm_start": release_lineage(args.v1, metadata)}),
    }
    v2.eval()
    export_release(v2, get_arch("deepfill-v2"), V2_CONFIG, CONFIGS[V2_CONFIG], args.out, info)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
