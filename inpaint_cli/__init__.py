"""inpaint: fill holes in photographs with the classic inpainting networks."""

__version__ = "0.1.0"
