"""Training: one loop for every architecture (`loop`), packed data and generated holes (`data`),
checkpoints and warm starts (`state`), release files (`export`), the weight average (`ema`)."""

from inpaint_cli.train.loop import (
    Trainer,
    TrainResult,
    TrainSettings,
    check_run_options,
    parse_phase_steps,
    start_training,
)

__all__ = ["TrainResult", "TrainSettings", "Trainer", "check_run_options", "parse_phase_steps", "start_training"]
