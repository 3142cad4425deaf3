"""Reusable widgets (no knowledge of runs or the engine): charts, viewers, dialogs."""
