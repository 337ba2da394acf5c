"""Deprecated module: the sEMG experiments moved to :mod:`lightvision.adaptation.semg` (this
module goes in the next release)."""

from .._deprecation import moved_names

__getattr__ = moved_names(__name__, dict.fromkeys(
    ("METHODS", "run_semg_method", "semg_split"), "lightvision.adaptation.semg"))
