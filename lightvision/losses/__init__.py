"""The one home of the losses, registered in :data:`lightvision.registry.LOSSES`.

Every loss has one signature: two batches of the same kind first (model outputs or features of
a student and a teacher, or of a source and a target domain), configuration as keyword
arguments, a scalar tensor out, differentiable with respect to both inputs::

    loss(a, b, **config) -> torch.Tensor  # shape ()

A registered loss declares for the common checks (``tests/common/test_losses.py``)
``test_input_shape`` (the shape of ``a`` and ``b``), ``min_rows`` (the smallest batch it takes)
and ``zero_on_equal`` (whether ``loss(a, a) == 0``).

- Domain discrepancies (seed #13): :func:`mmd_loss` (``"mmd"``), :func:`coral_loss`
  (``"coral"``), in :mod:`lightvision.losses.discrepancy`.
"""

from .discrepancy import coral_loss, mmd_loss

__all__ = ["coral_loss", "mmd_loss"]
