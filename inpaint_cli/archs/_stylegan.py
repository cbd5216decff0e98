"""What Co-ModGAN (Zhao et al., ICLR 2021) and MAT (Li et al., CVPR 2022) share: a fill drawn from
a latent z through StyleGAN2's mapping network, seeded and truncated as the official inference does,
and the adversarial training recipe (docs/architectures.md §8, §9, §S)."""

from __future__ import annotations

from typing import Any

import torch

from inpaint_cli.archs.base import InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.stylegan2 import ChannelsLastSafe, MappingNetwork, mix_styles, seeded_latents
from inpaint_cli.losses.adversarial import bce_discriminator_loss, bce_generator_loss
from inpaint_cli.losses.stylegan2 import ema_beta, lazy_adam_settings, r1_regularization

ADAM_BETAS = (0.0, 0.99)
G_REG_INTERVAL = 4  # the official lazy-regularisation correction of G's Adam, with no G regulariser


class StyleInpainter(ChannelsLastSafe, InpaintModel):
    """A pluralistic generator: `inpaint(image, mask, seed=, truncation=)` draws z (numpy's
    generator for a seed, as the official `generate_image.py`), maps it to w with truncation psi,
    and fills with `synthesise`."""

    #: the official inferences' truncation: none (psi = 1)
    default_truncation = 1.0
    #: the fill may pass `seed` and `truncation` to `inpaint`
    pluralistic = True
    #: the noise inputs at inference ("random" or the stored "const" maps)
    inference_noise = "random"
    config: Any
    mapping: MappingNetwork

    def synthesise(self, image: torch.Tensor, known: torch.Tensor, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """The final output in [-1, 1] of `image` in [-1, 1] with `known` (1 = known) and styles `ws`."""
        raise NotImplementedError

    def inpaint(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        *,
        seed: int | None = None,
        truncation: float | None = None,
    ) -> torch.Tensor:
        psi = self.default_truncation if truncation is None else truncation
        with seeded_latents(seed, image.shape[0], self.config.z_dim, image.device) as z:
            ws = self.mapping(z, psi, update_w_avg=False)
            output = self.synthesise(image * 2 - 1, 1 - mask, ws, self.inference_noise)
        return ((output + 1) / 2).clamp(0, 1)


class StyleGANRecipe(TrainingRecipe):
    """Co-ModGAN's official recipe (§8.4), which MAT's extends to two stages (§9.4); each
    architecture's recipe builds its own discriminator. Non-saturating logistic loss on composites, lazy R1 (gamma 10
    every 16 D steps, times 16), Adam (0, 0.99) with the lazy-regularisation corrections, style
    mixing 0.5, truncation 0.5 in training, w_avg beta 0.995. `default_ema_decay` is the official
    G_ema (half-life 10 kimg) for the loop's weight average.

    Departures: G and D share one generator forward per step (the official code runs G again
    with new z for the D step), and R1 is added to that step's D loss instead of its own Adam step.
    Holes: the project's free-form strokes and boxes (the official `RandomMask` is boxes + strokes).
    """

    mask_kinds = (("freeform", 0.5), ("box", 0.5))

    def __init__(self, config, options: TrainOptions) -> None:
        super().__init__(config, options)
        if options.size != self.required_size(config):
            raise ValueError(f"this config trains at its fixed size: pass --size {config.resolution}")
        group = min(config.mbstd_group, options.batch)
        if options.batch % group:
            raise ValueError(f"the minibatch-stddev layer needs a batch divisible by {group}")
        self.default_ema_decay = ema_beta(options.batch, config.ema_kimg)

    @classmethod
    def required_size(cls, config) -> int:
        return config.resolution

    def phases(self) -> list[Phase]:
        return [Phase("joint", None, train_generator=True, train_discriminator=True)]

    def optimizers(self, generator, discriminator):
        scale = self.options.lr / self.config.lr if self.options.lr else 1.0
        optimizers = {}
        for name, network, interval in (
            ("generator", generator, G_REG_INTERVAL),
            ("discriminator", discriminator, self.config.r1_interval),
        ):
            lr, betas = lazy_adam_settings(self.config.lr * scale, ADAM_BETAS, interval)
            optimizers[name] = torch.optim.Adam(network.parameters(), lr, betas=betas, eps=1e-8)
        self.discriminator_optimizer = optimizers["discriminator"]
        return optimizers

    def discriminator_updates(self) -> int:
        """D updates so far, read from its Adam state (restored on resume, unlike a counter)."""
        optimizer = self.discriminator_optimizer
        state = optimizer.state.get(optimizer.param_groups[0]["params"][0], {})
        return int(state.get("step", 0))

    def styles(self, generator: StyleInpainter, batch: int, device: torch.device) -> torch.Tensor:
        """ws for a training step: fresh z, training truncation, style mixing."""
        config = self.config
        z = torch.randn(batch, config.z_dim, device=device)
        ws = generator.mapping(z, config.train_truncation)
        return mix_styles(generator.mapping, z, ws, config.style_mixing, config.train_truncation)

    def generate(self, generator, image, mask) -> dict[str, torch.Tensor]:
        ws = self.styles(generator, image.shape[0], image.device)
        return {"output": generator(image * 2 - 1, 1 - mask, ws)}

    def prediction(self, output) -> torch.Tensor:
        return ((output["output"] + 1) / 2).clamp(0, 1)

    @staticmethod
    def composite(raw: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The official network output: the fill in the hole, the real image elsewhere ([-1, 1])."""
        return raw * mask + (image * 2 - 1) * (1 - mask)

    def fakes(self, output, image, mask) -> list[torch.Tensor]:
        """The composites each discriminator head judges (MAT: both stages)."""
        return [self.composite(output["output"], image, mask)]

    def head_logits(self, discriminator, images: list[torch.Tensor], known: torch.Tensor) -> list[torch.Tensor]:
        """Logits of each head for its image (Co-ModGAN: one head)."""
        return [discriminator(images[0], known)]

    def discriminator_loss(self, discriminator, image, mask, output):
        config = self.config
        known = 1 - mask
        # the official Dreg phase runs at D steps 0, 16, 32, ...
        regularize = self.discriminator_updates() % config.r1_interval == 0
        fakes = self.fakes(output, image, mask)
        reals = [(image * 2 - 1).detach().requires_grad_(regularize) for _ in fakes]
        fake_logits = self.head_logits(discriminator, fakes, known)
        real_logits = self.head_logits(discriminator, reals, known)
        loss = sum(bce_discriminator_loss(r, f) for r, f in zip(real_logits, fake_logits))
        logs = {"d": loss.item()}
        if regularize:
            r1 = sum(r1_regularization(r, x, config.r1_gamma, config.r1_interval) for r, x in zip(real_logits, reals))
            loss = loss + r1
            logs["r1"] = r1.item()
        return loss, logs

    def generator_loss(self, discriminator, image, mask, output, phase):
        logits = self.head_logits(discriminator, self.fakes(output, image, mask), 1 - mask)
        adversarial = sum(bce_generator_loss(f) for f in logits)
        # the L1 of the composite is only logged, as MAT logs it ("just for showing")
        rec = (self.composite(output["output"], image, mask) - (image * 2 - 1)).abs().mean()
        return adversarial, {"adv": adversarial.item(), "rec": rec.item()}
