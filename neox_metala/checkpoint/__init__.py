"""Checkpoint tools: `python -m neox_metala.checkpoint convert` (a checkpoint into another parallel layout)."""
