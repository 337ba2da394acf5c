"""Model compression: structured pruning (:mod:`lightvision.compression.pruning`).

Importing this package imports torch.
"""
