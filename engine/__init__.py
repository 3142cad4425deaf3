"""Frelon's headless engine: data, models, training, evaluation, export. Never imports Qt."""
