"""Training losses shared by the recipes: adversarial, per-pixel reconstruction, and feature
(perceptual, style) losses. Network blocks are under `inpaint_cli.layers`."""
