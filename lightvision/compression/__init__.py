"""Model compression. :mod:`lightvision.compression.pruning`: structured pruning that removes
channels for real (a surgery engine, L1, EPruner, FilterSketch, SSR). Importing this package
alone loads nothing heavy; its subpackages import torch.
"""
