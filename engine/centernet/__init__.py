"""CenterNet ("Objects as Points", Zhou et al. 2019) for Frelon's detection task.

model.py (neck + heads on a registry backbone), targets.py (Gaussian heatmaps, size / offset
targets), loss.py (penalty-reduced focal loss + L1), decode.py (peaks → boxes in the original
image), transforms.py (v2 augmentation and letterbox), dataset.py (records → tensors), predict.py
(the predict / eval / export helpers the commands call), shapes.py (synthetic data).
"""
