"""Domain-discrepancy losses between a source and a target batch of features.

:func:`mmd_loss` (multi-kernel maximum mean discrepancy, as in DAN [2]_) and :func:`coral_loss`
(Deep CORAL [3]_) take features ``source`` (n_s, d) and ``target`` (n_t, d), are differentiable
with respect to both and return a scalar tensor. Domain adaptation (seed #13,
:mod:`lightvision.adaptation`) adds them to the regression loss of a two-stream network.

References
----------
.. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schoelkopf, A. Smola, "A kernel two-sample
   test", Journal of Machine Learning Research 13:723-773, 2012.
.. [2] M. Long, Y. Cao, J. Wang, M. I. Jordan, "Learning transferable features with deep
   adaptation networks", Proc. ICML 2015 (DAN).
.. [3] B. Sun, K. Saenko, "Deep CORAL: correlation alignment for deep domain adaptation",
   ECCV 2016 Workshops (TASK-CV), LNCS 9915, pp. 443-450.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_real
from ..registry import LOSSES

__all__ = ["coral_loss", "mmd_loss"]


def _check_pair(source: object, target: object, min_rows: int) -> tuple[torch.Tensor, ...]:
    """Types and shapes only: values are checked once, on the result (:func:`_finite`)."""
    for name, x in (("source", source), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {x.dtype}")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-d (n, d), got shape {tuple(x.shape)}")
        if x.shape[0] < min_rows or x.shape[1] < 1:
            raise ValueError(f"{name} must have at least {min_rows} row(s) and 1 column, "
                             f"got shape {tuple(x.shape)}")
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target must have the same number of features, got "
                         f"{source.shape[1]} and {target.shape[1]}")
    if source.device != target.device:
        raise ValueError(f"source and target must be on the same device, got {source.device} "
                         f"and {target.device}")
    dtype = torch.promote_types(source.dtype, target.dtype)
    return source.to(dtype), target.to(dtype)


def _exponent(*zs: torch.Tensor) -> torch.Tensor:
    """``floor(log2(max |z|))`` over ``zs`` (a detached scalar tensor, >= that of the dtype's
    smallest normal number): features are divided by ``2 ** exponent``.

    Dividing by a power of two is exact in floating point, so the scaled features give bit
    for bit the values of the unscaled computation wherever that one does not overflow or
    underflow, and stay in range where it would (features of 1e30 squared overflow
    float32)."""
    peak = torch.stack([z.detach().abs().amax() for z in zs]).amax()
    return torch.floor(torch.log2(peak.clamp_min(torch.finfo(peak.dtype).tiny)))


def _finite(value: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
            loss: str) -> torch.Tensor:
    """``value`` if it is finite; else ``ValueError`` naming the input at fault. Non-finite
    inputs always make the result non-finite, so one scalar check covers them."""
    if bool(torch.isfinite(value)):
        return value
    for name, x in (("source", source), ("target", target)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    hint = "" if value.dtype == torch.float64 else " or compute in float64"
    raise ValueError(f"{loss} of these features overflows {value.dtype} (features up to "
                     f"{float(torch.cat([source, target]).detach().abs().max()):.3g}): scale "
                     f"them down{hint}")


@LOSSES.register(name="mmd", tags={"domain_adaptation", "discrepancy"},
                deprecated_names=("mmd_loss",), test_input_shape=(6, 3), min_rows=1,
                zero_on_equal=True)
def mmd_loss(
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
    bandwidth: float | None = None,
) -> torch.Tensor:
    """Squared maximum mean discrepancy [1]_ with a multi-kernel Gaussian, DAN-style [2]_.

    ``k(x, y) = sum_i exp(-||x - y||**2 / g_i)`` with ``g_i = bandwidth * kernel_mul**(i -
    kernel_num // 2)``, ``i = 0..kernel_num-1``; the biased (V-statistic) estimate

        MMD**2 = mean k(s, s') + mean k(t, t') - 2 mean k(s, t)

    over all pairs (including each point with itself) is >= 0 (tiny negative rounding is
    clamped to 0) and 0 for identical sets.

    Parameters
    ----------
    source : (n_s, d) features, floating point, finite, n_s >= 1.
    target : (n_t, d) features; n_t may differ from n_s.
    kernel_mul : ratio between consecutive bandwidths (> 0).
    kernel_num : number of Gaussian kernels (>= 1).
    bandwidth : middle bandwidth ``g`` (squared-distance units, > 0); None uses the mean squared
        distance between distinct points of the pooled sample (not differentiated through).

    Returns
    -------
    Scalar tensor (of the promoted dtype of the inputs), differentiable with respect to both.
    Distances are computed on the features divided by a power of two near their largest
    magnitude: exact where the direct computation is in range, and finite for features whose
    squares overflow (1e30 in float32). Non-finite features raise ``ValueError``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    >>> float(mmd_loss(x, x)) < 1e-6
    True
    >>> bool(mmd_loss(x, y + 1.0) > mmd_loss(x, y + 0.2) > mmd_loss(x, y))
    True

    References
    ----------
    .. [1] Gretton et al., "A kernel two-sample test", JMLR 13:723-773, 2012.
    .. [2] Long et al., "Learning transferable features with deep adaptation networks",
       ICML 2015.
    """
    source, target = _check_pair(source, target, 1)
    kernel_mul = check_real(kernel_mul, "kernel_mul")
    check_int(kernel_num, "kernel_num")
    if bandwidth is not None:
        bandwidth = check_real(bandwidth, "bandwidth")
    try:
        factors = [kernel_mul ** (i - kernel_num // 2) for i in range(kernel_num)]
    except OverflowError:
        raise ValueError(f"kernel_mul ** (kernel_num // 2) overflows (kernel_mul={kernel_mul}, "
                         f"kernel_num={kernel_num})") from None
    n_s = source.shape[0]
    z = torch.cat([source, target])
    exponent = _exponent(z)
    z = z / torch.exp2(exponent)  # distances in units of 4**exponent: in range
    sq = (z * z).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * z @ z.T).clamp_min(0.0)  # (n, n) squared
    tiny = torch.finfo(z.dtype).tiny
    if bandwidth is None:
        n = z.shape[0]
        width = dist.detach().sum() / (n * n - n)  # n >= 2
    else:
        # bandwidth / 4**exponent, exactly, even where bandwidth or 4**exponent overflows
        mantissa, power = math.frexp(bandwidth)
        width = 2.0 * mantissa * torch.exp2(power - 1 - 2.0 * exponent)
    # a width that underflows to 0 leaves the diagonal at exp(-0/tiny) = 1, the rest at 0
    kernel = sum(torch.exp(-dist / (width * f).clamp_min(tiny)) for f in factors)
    mmd = (kernel[:n_s, :n_s].mean() + kernel[n_s:, n_s:].mean()
           - 2.0 * kernel[:n_s, n_s:].mean())
    return _finite(mmd.clamp_min(0.0), source, target, "mmd_loss")


@LOSSES.register(name="coral", tags={"domain_adaptation", "discrepancy"},
                deprecated_names=("coral_loss",), test_input_shape=(6, 3), min_rows=2,
                zero_on_equal=True)
def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL [1]_: ``||C_s - C_t||_F**2 / (4 d**2)`` between feature covariances.

    ``C_s`` and ``C_t`` are the unbiased (divided by n - 1) d x d covariance matrices.

    Parameters
    ----------
    source : (n_s, d) features, floating point, finite, n_s >= 2.
    target : (n_t, d) features, n_t >= 2; n_t may differ from n_s.

    Returns
    -------
    Scalar tensor (of the promoted dtype of the inputs), differentiable with respect to both.
    The covariances are computed on the features divided by a power of two near their
    largest magnitude (exact where the direct computation is in range). Non-finite features,
    and a loss beyond the dtype's range (features of 1e30 in float32: about 1e120), raise
    ``ValueError``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(100, 4, generator=g)
    >>> float(coral_loss(x, x + 3.0)) < 1e-10  # a shift leaves the covariance unchanged
    True
    >>> bool(coral_loss(x, 2.0 * x) > 0)
    True

    References
    ----------
    .. [1] Sun and Saenko, "Deep CORAL: correlation alignment for deep domain adaptation",
       ECCV 2016 Workshops.
    """
    source, target = _check_pair(source, target, 2)
    s = torch.exp2(_exponent(source, target))  # exact power-of-two scaling

    def cov(x: torch.Tensor) -> torch.Tensor:  # in units of s**2
        x = x / s
        x = x - x.mean(dim=0, keepdim=True)
        return x.T @ x / (x.shape[0] - 1)

    d = source.shape[1]
    diff = (cov(source) - cov(target)) * s * s
    return _finite((diff ** 2).sum() / (4.0 * d * d), source, target, "coral_loss")
