"""Energy-per-inference estimate from a per-operation energy table.

This is an **estimate**, not a measurement: operation and memory-access counts times
per-operation energies from Horowitz (ISSCC 2014, 45 nm, 0.9 V). It ignores leakage, control,
data movement inside the datapath and everything but the listed accesses.

Model
-----
* compute = ``macs * mac_pj + binary_ops * binary_op_pj + ternary_ops * ternary_op_pj
  + other_ops * other_op_pj``, with the **non-zero** binary and ternary counts of
  :class:`~lightvision.metrics.OpCount` (``binary_ops``, ``ternary_ops``: a zero weight is
  skipped, so a ternary convolution of density 0.1 costs a tenth of a dense one), not
  ``dense_binary_ops`` / ``dense_ternary_ops``; real MACs are dense;
* memory = the model's weights fetched once from DRAM (``model_bytes * 8 / word_bits`` words at
  ``dram_word_pj``) plus the activation traffic in SRAM: every activation byte is written once
  and read once (``2 * activation_bytes * 8 / word_bits`` words at ``sram_word_pj``).
  :func:`~lightvision.metrics.profile` passes the total activation traffic
  (:func:`~lightvision.metrics.activation_traffic_bytes`), not the peak: the peak is a
  capacity, the traffic is what is accessed.

Interpretations of the table (Horowitz lists neither binary nor ternary operations):

* a MAC is an fp32 multiply (3.7 pJ) plus an fp32 add (0.9 pJ) = 4.6 pJ; for an int8
  deployment :meth:`EnergyTable.int8` uses the int8 MAC, 0.2 + 0.03 = 0.23 pJ;
* a ternary operation (weight in {-1, 0, +1}) is a sign selection and one accumulation: one fp32
  add, 0.9 pJ;
* a binary operation is one XNOR-popcount step per bit: the XNOR gate is negligible and
  accumulating one bit into a popcount is bounded above by an 8-bit integer add, 0.03 pJ;
* other operations (pooling comparisons and additions) are fp32 adds, 0.9 pJ.

References
----------
.. [1] M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC
   2014, pp. 10-14.
.. [2] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._checks import check_int, check_real
from .counting import OpCount

__all__ = ["EnergyEstimate", "EnergyTable", "estimate_energy"]


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation and per memory word, in picojoules (Horowitz 2014, 45 nm, 0.9 V).

    Attributes
    ----------
    mac_pj : float
        Energy of one real MAC, default an fp32 multiply + add, 3.7 + 0.9 = 4.6 pJ.
    binary_op_pj : float
        One XNOR-popcount bit step, taken as an int8 add, 0.03 pJ (interpretation).
    ternary_op_pj : float
        One sign-select-and-accumulate, taken as an fp32 add, 0.9 pJ (interpretation).
    other_op_pj : float
        One pooling comparison or addition, an fp32 add, 0.9 pJ.
    dram_word_pj : float
        One DRAM access of a ``word_bits`` word, 640 pJ (20 pJ/bit).
    sram_word_pj : float
        One access of a ``word_bits`` word in an 8 KB SRAM, 5 pJ.
    word_bits : int
        Memory word width in bits, 32.
    """

    mac_pj: float = 3.7 + 0.9
    binary_op_pj: float = 0.03
    ternary_op_pj: float = 0.9
    other_op_pj: float = 0.9
    dram_word_pj: float = 640.0
    sram_word_pj: float = 5.0
    word_bits: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):  # plain Python numbers from numpy scalars too
            value = getattr(self, f.name)
            value = (check_int(value, f.name) if f.name == "word_bits"
                     else check_real(value, f.name, strict=False))
            object.__setattr__(self, f.name, value)

    @classmethod
    def int8(cls) -> EnergyTable:
        """The table for int8 arithmetic: an int8 multiply + add, 0.2 + 0.03 = 0.23 pJ per MAC."""
        return cls(mac_pj=0.2 + 0.03)


@dataclass(frozen=True)
class EnergyEstimate:
    """Estimated energy of one inference, in microjoules (an estimate, not a measurement).

    Attributes
    ----------
    compute_uj : float
        Estimated arithmetic energy.
    memory_uj : float
        Estimated DRAM weight-fetch plus SRAM activation-access energy.
    total_uj : float
        ``compute_uj + memory_uj``.
    """

    compute_uj: float
    memory_uj: float
    total_uj: float


def estimate_energy(
    ops: OpCount,
    model_bytes: int,
    activation_bytes: int,
    table: EnergyTable | None = None,
) -> EnergyEstimate:
    """Estimate the energy of one inference (see the module docstring for the model).

    Parameters
    ----------
    ops : OpCount
        Operations of one inference, e.g. from :func:`~lightvision.metrics.count_ops`; its
        non-zero ``binary_ops`` and ``ternary_ops`` are charged (not the dense counts).
    model_bytes : int
        Weight storage fetched once from DRAM, in bytes.
    activation_bytes : int
        Activation bytes written once and read once in SRAM.
    table : EnergyTable, optional
        Per-operation energies; default ``EnergyTable()``.

    Returns
    -------
    EnergyEstimate
        Estimated energies in microjoules.
    """
    if not isinstance(ops, OpCount):
        raise TypeError(f"ops must be an OpCount, got {type(ops).__name__}")
    check_int(model_bytes, "model_bytes", 0)
    check_int(activation_bytes, "activation_bytes", 0)
    if table is None:
        table = EnergyTable()
    elif not isinstance(table, EnergyTable):
        raise TypeError(f"table must be an EnergyTable, got {type(table).__name__}")
    compute_pj = (
        ops.macs * table.mac_pj
        + ops.binary_ops * table.binary_op_pj
        + ops.ternary_ops * table.ternary_op_pj
        + ops.other_ops * table.other_op_pj
    )
    memory_pj = (
        model_bytes * 8 / table.word_bits * table.dram_word_pj
        + 2 * activation_bytes * 8 / table.word_bits * table.sram_word_pj
    )
    return EnergyEstimate(
        compute_uj=compute_pj * 1e-6,
        memory_uj=memory_pj * 1e-6,
        total_uj=(compute_pj + memory_pj) * 1e-6,
    )
