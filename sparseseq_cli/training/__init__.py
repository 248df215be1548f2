"""Training loops, run directories and checkpoints, parameter averaging, progress output."""
