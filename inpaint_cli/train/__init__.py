"""Training: one loop for every architecture (`loop`), packed data and generated holes (`data`),
checkpoints and warm starts (`state`), release files (`export`), the weight average (`ema`)."""

from inpaint_cli.train.loop import (
    Trainer,
    TrainResult,
    TrainSettings,
    start_training,
)

__all__ = ["TrainResult", "TrainSettings", "Trainer", "start_training"]
