"""Deprecated module: domain adaptation moved to :mod:`lightvision.adaptation` and the
discrepancy losses to :mod:`lightvision.losses` (this module goes in the next release)."""

from .._deprecation import moved_names

__getattr__ = moved_names(__name__, {
    "DomainAdaptationTask": "lightvision.adaptation",
    "fit_domain_adaptation": "lightvision.adaptation",
    "mmd_loss": "lightvision.losses",
    "coral_loss": "lightvision.losses",
})
