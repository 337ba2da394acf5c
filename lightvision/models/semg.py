"""A CNN that regresses the wrist angle from a window of multichannel sEMG (Bao et al., seed #13).

Bao et al. [1]_ estimate wrist flexion-extension kinematics from forearm surface EMG with a CNN
and adapt it from one subject (or several) to a new subject with a few labelled target windows:
a two-stream network with shared weights, a regression loss on both streams and a
domain-discrepancy loss between the streams' features (see
:class:`lightvision.training.DomainAdaptationTask`). Only the abstract is available; the
architecture here is [INTERP] (notes/methods-architectures.md, section 6; the authors' earlier
CNN-LSTM paper feeds the CNN an "sEMG spectrum"):

- :class:`SEMGNet`: raw windows (N, C, L) -> per-channel log power spectrogram (C maps of
  frequency x time) -> conv-BN-ReLU-pool blocks -> global average pooling -> FC features ``h``
  -> linear head -> angle; or 1-D conv blocks straight on the raw window.
- :func:`kinematics_scores`: R^2, NRMSE and Pearson r of an angle trajectory.
- :data:`ANGLE_SCALE` and :func:`predict_angles`: the one place where angles in degrees become
  training targets (``angle / ANGLE_SCALE``) and predictions become degrees again.

>>> import torch
>>> from lightvision.models import SEMGNet
>>> SEMGNet()(torch.randn(4, 8, 400)).shape
torch.Size([4, 1])

References
----------
.. [1] T. Bao, S. A. R. Zaidi, S. Xie, P. Yang, Z.-Q. Zhang, "Inter-Subject Domain Adaptation
   for CNN-Based Wrist Kinematics Estimation Using sEMG", IEEE Transactions on Neural Systems
   and Rehabilitation Engineering 29:1068-1078, 2021 (seed #13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_int, check_int_sequence, check_model, check_real, floating_dtype
from .._deprecation import renamed_kwargs
from ..registry import MODELS
from .base import Classifier, _stage_ends, as_array, as_tensor, check_dropout, check_dtype

__all__ = [
    "ANGLE_SCALE",
    "SEMGNet",
    "kinematics_scores",
    "predict_angles",
    "semg_cnn",
    "semg_cnn_raw",
]

#: [INTERP] Targets are angles in degrees divided by this (the generator's angles lie in about
#: [-60, 60], so the targets lie in about [-1, 1]); :func:`predict_angles` multiplies back.
ANGLE_SCALE = 60.0

_REPRESENTATIONS = ("spectrogram", "raw")
_EPS = 1e-6  # added to the power before the log (the sensor noise floor is ~1e-4)
_TINY = 1e-30  # floor of |STFT| (power 1e-60, negligible against _EPS)
_RAW_KERNEL = 7

# fit() keyword arguments on angle / ANGLE_SCALE targets with MSE
_TRAIN = {"epochs": 8, "batch_size": 64, "lr": 2e-3, "weight_decay": 1e-4}


def _raw_length(length: int, n_blocks: int) -> int:
    """Length after ``n_blocks`` raw blocks (conv k7 s2 p3, then max-pool 2 but the last)."""
    for i in range(n_blocks):
        length = (length - 1) // 2 + 1 if length >= 1 else 0
        if i < n_blocks - 1:
            length //= 2
    return length


class SEMGNet(Classifier):
    """[INTERP] CNN regressor of the wrist angle from a raw sEMG window (Bao et al., seed #13).

    Input: raw windows (N, in_channels, L) in the recording's units (no per-window
    standardisation: the EMG amplitude carries the muscle activation, i.e. the angle).

    ``representation="spectrogram"`` (default):

    1. per channel, the power spectrogram of a Hann-windowed short-time Fourier transform
       (``torch.stft``, ``n_fft`` samples, hop ``hop``, no centring/padding: frame ``t`` covers
       samples ``t * hop .. t * hop + n_fft - 1``), ``P = |STFT|**2 / sum(w**2)``, keeping the
       bins up to ``f_max`` Hz (at ``fs``; the EMG band ends at 450 Hz) and taking
       ``log(P + 1e-6)``: C maps of F x T (defaults: 17 bins 0..500 Hz x 11 frames for
       L = 400);
    2. ``len(widths)`` blocks of 3x3 conv (padding 1, no bias) - BN - ReLU, each but the last
       followed by 2x2 max pooling;
    3. global average pooling, FC to ``feature_dim`` and ReLU: the features ``h``
       (:meth:`forward_features`, what the domain-discrepancy loss compares);
    4. dropout and a linear head to ``num_outputs`` (:meth:`forward_head`).

    ``representation="raw"``: ``len(widths)`` blocks of 1-D conv (kernel 7, stride 2, padding
    3, no bias) - BN - ReLU, each but the last followed by max pooling by 2, straight on the
    raw window (BN does the scaling), then the same pooling, FC and head.

    Defaults (8 channels, L = 400 = 200 ms at 2 kHz): 28,641 parameters (spectrogram) and
    23,265 (raw). The shortest window the network takes is ``min_window`` samples
    (``n_fft + hop * (2**(len(widths) - 1) - 1)`` = 160 for the spectrogram defaults, 11 for
    the raw defaults).

    Representation: measured once on :func:`lightvision.datasets.make_semg` (5 subjects x 8
    channels x 60 s, ``random_state=0``, seed 0; the settings of ``tests/test_semg_repro.py``:
    200 ms windows every 50 ms, 20 epochs, 10 s of labelled target data, SDA with MMD, lam 0.1,
    joint streams). Target NRMSE, spectrogram against raw: source-only 0.204 vs 0.156 (source
    0 -> target 1) and 0.070 vs 0.263 (sources 0, 2, 3 -> 1); SDA 0.178 vs 0.092 and 0.082 vs
    0.162; source NRMSE alike (0.04-0.05). One seed, mixed results: the spectrogram is the
    default for its lower mean source-only error (0.137 vs 0.210; SDA 0.130 vs 0.127), its
    robustness in the multi-source case and its 2-3x faster training on CPU.

    Parameters
    ----------
    num_outputs : regressed values (1: the flexion-extension angle).
    in_channels : EMG channels C.
    window : the window length L the model is built for (it must be >= ``min_window``);
        other lengths >= ``min_window`` are accepted too (global pooling).
    representation : ``"spectrogram"`` or ``"raw"``.
    widths : output channels of each conv block.
    feature_dim : size of the feature vector ``h``.
    dropout : dropout probability before the head.
    n_fft, hop : STFT frame length and hop in samples (spectrogram only).
    fs : sampling rate in Hz; f_max : highest frequency kept (spectrogram only).

    References
    ----------
    T. Bao et al., IEEE TNSRE 29:1068-1078, 2021 (seed #13): shared-weight CNN regressing wrist
    kinematics from sEMG [ABSTRACT]; input representation, layers and sizes [INTERP].

    >>> import torch
    >>> model = SEMGNet()
    >>> model(torch.randn(2, 8, 400)).shape, model.forward_features(torch.randn(2, 8, 400)).shape
    (torch.Size([2, 1]), torch.Size([2, 64]))
    >>> model.min_window, SEMGNet(representation="raw").min_window
    (160, 11)
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_outputs: int = 1,
        in_channels: int = 8,
        *,
        window: int = 400,
        representation: str = "spectrogram",
        widths: Sequence[int] = (16, 32, 64),
        feature_dim: int = 64,
        dropout: float = 0.1,
        n_fft: int = 64,
        hop: int = 32,
        fs: float = 2000.0,
        f_max: float = 500.0,
    ) -> None:
        widths = check_int_sequence(widths, "widths")
        if not isinstance(representation, str) or representation not in _REPRESENTATIONS:
            raise ValueError(f"representation must be one of {_REPRESENTATIONS}, "
                             f"got {representation!r}")
        window = check_int(window, "window")
        feature_dim = check_int(feature_dim, "feature_dim")
        n_fft = check_int(n_fft, "n_fft", minimum=2)
        hop = check_int(hop, "hop")
        fs = check_real(fs, "fs")
        f_max = check_real(f_max, "f_max")
        dropout = check_dropout(dropout)
        n_pool = len(widths) - 1
        if representation == "spectrogram":
            self.n_bins = min(int(np.floor(f_max * n_fft / fs + 1e-9)) + 1, n_fft // 2 + 1)
            if self.n_bins < 2**n_pool:
                raise ValueError(
                    f"the spectrogram keeps {self.n_bins} frequency bin(s) up to f_max={f_max} "
                    f"Hz (n_fft={n_fft}, fs={fs}); {len(widths)} blocks need at least "
                    f"{2**n_pool}: raise n_fft or f_max, or use fewer widths")
            min_window = n_fft + hop * (2**n_pool - 1)
        else:
            self.n_bins = 0
            min_window = 1
            while _raw_length(min_window, len(widths)) < 1:
                min_window += 1
        super().__init__(num_outputs, in_channels, min_size=min_window)
        if window < min_window:
            raise ValueError(f"window={window} samples is shorter than the {min_window} samples "
                             f"this {representation} network needs (min_window)")
        self.num_outputs = num_outputs
        self.window = window
        self.min_window = min_window
        self.representation = representation
        self.widths = widths
        self.n_fft, self.hop, self.fs, self.f_max = n_fft, hop, fs, f_max
        if representation == "spectrogram":
            self.register_buffer("stft_window", torch.hann_window(n_fft, dtype=torch.float64),
                                 persistent=False)  # float64: cast to the input dtype
            conv, bn, pool = nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d
            kernel, extra = 3, {"padding": 1}
        else:
            self.stft_window = None
            conv, bn, pool = nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d
            kernel, extra = _RAW_KERNEL, {"stride": 2, "padding": _RAW_KERNEL // 2}
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, width in enumerate(widths):
            layers += [conv(c_in, width, kernel, bias=False, **extra), bn(width),
                       nn.ReLU(inplace=True)]
            if i < n_pool:
                layers.append(pool(2))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.feature_stages = _stage_ends(self.features, "features")
        self.fc = nn.Sequential(nn.Linear(widths[-1], feature_dim), nn.ReLU(inplace=True))
        self.num_features = feature_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_outputs))

    def check_input(self, x: torch.Tensor) -> None:
        """Clear errors for input the network cannot take: shape, channels, length, dtype, NaN.

        Skipped for ``torch.fx`` proxies (a graph being traced).
        """
        if isinstance(x, torch.fx.Proxy):
            return
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3:
            raise ValueError(f"x must have shape (N, C, L) (sEMG windows), got shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels but the model expects "
                             f"in_channels={self.in_channels}")
        if x.shape[2] < self.min_window:
            raise ValueError(f"x windows have {x.shape[2]} samples; this {self.representation} "
                             f"network needs a window of at least {self.min_window} samples")
        check_dtype(self, x)
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite samples")

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Raw windows (N, C, L) -> log power spectrogram (N, C, n_bins, T).

        ``T = 1 + (L - n_fft) // hop``; ``log(|STFT|**2 / sum(w**2) + 1e-6)`` with the periodic
        Hann window ``w``, bins 0 .. n_bins - 1 (frequencies ``k * fs / n_fft`` <= f_max).
        """
        if self.stft_window is None:
            raise RuntimeError("spectrogram() needs representation='spectrogram'")
        n, c, length = x.shape
        if not isinstance(x, torch.fx.Proxy) and n == 0:  # MKL's stft refuses an empty batch
            return x.new_empty((0, c, self.n_bins, 1 + (length - self.n_fft) // self.hop))
        window = self.stft_window.to(x.dtype)
        spec = torch.stft(x.reshape(n * c, length), self.n_fft, hop_length=self.hop,
                          win_length=self.n_fft, window=window, center=False,
                          return_complex=True)[:, : self.n_bins]
        # log(|S|^2 / sum(w^2) + eps) as logaddexp(2 log|S| - log sum(w^2), log eps): squaring
        # |S| overflows float32 from |x| ~ 1e18; the floor keeps log and its gradient finite
        log_power = 2.0 * torch.log(spec.abs().clamp_min(_TINY)) - torch.log((window**2).sum())
        log_eps = torch.tensor(_EPS, dtype=log_power.dtype).log()
        return torch.logaddexp(log_power, log_eps).reshape(n, c, self.n_bins, -1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw windows (N, C, L) -> features h (N, feature_dim), after the FC and ReLU."""
        if self.representation == "spectrogram":
            x = self.spectrogram(x)
        z = self.features(x)
        return self.fc(z.flatten(2).mean(dim=2))


def _register(name: str) -> Any:
    return MODELS.register(
        name=name,
        tags={"regression", "semg", "domain_adaptation"},
        test_params={"widths": (4, 8), "feature_dim": 8},
        bench_params={},
        input="signals",
        input_shape=(8, 400),
        dataset="semg",
        train=_TRAIN,
    )


@_register("semg_cnn")
@renamed_kwargs(in_chans="in_channels")
def semg_cnn(num_classes: int = 1, in_channels: int = 8, **kwargs) -> SEMGNet:
    """Bao et al.'s sEMG CNN on log spectrograms (see :class:`SEMGNet`); ``num_classes`` is the
    number of regressed outputs."""
    return SEMGNet(num_classes, in_channels, **kwargs)


@_register("semg_cnn_raw")
@renamed_kwargs(in_chans="in_channels")
def semg_cnn_raw(num_classes: int = 1, in_channels: int = 8, **kwargs) -> SEMGNet:
    """:class:`SEMGNet` with 1-D convolutions on the raw window (``representation="raw"``)."""
    return SEMGNet(num_classes, in_channels, representation="raw", **kwargs)


@torch.no_grad()
def predict_angles(model: nn.Module, X: np.ndarray | torch.Tensor, *,
                   batch_size: int = 512) -> np.ndarray:
    """Angles in degrees predicted for windows ``X`` (n, C, L): ``ANGLE_SCALE * model(X)``.

    The model (trained on ``angle / ANGLE_SCALE`` targets, one output) runs in eval mode in
    batches of ``batch_size``; its train/eval mode is restored. ``X`` (n >= 1 windows: an
    array, a tensor or nested lists of numbers) is converted to the model's dtype. Returns
    float64 (n,).
    """
    check_model(model)
    check_int(batch_size, "batch_size")
    x = as_tensor(X, "X")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"X must hold at least one window (n, C, L), got shape {tuple(x.shape)}")
    x = x.to(floating_dtype(model) or torch.get_default_dtype())  # any numbers, in the model's
    was_training = model.training
    model.eval()
    try:
        out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"model must give one output per window, got shape {tuple(out.shape)}")
    return ANGLE_SCALE * out[:, 0].double().numpy()


def kinematics_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R^2, NRMSE and Pearson r of a predicted angle trajectory.

    - ``r2``: :func:`sklearn.metrics.r2_score` (1 is perfect, 0 is predicting the mean);
    - ``nrmse``: RMSE / (max(y_true) - min(y_true)) (0 is perfect; unitless);
    - ``pearson_r``: the correlation coefficient (:func:`numpy.corrcoef`).

    Parameters
    ----------
    y_true, y_pred : 1-d (or (n, 1)) arrays of the same length n >= 2, finite. Neither may be
        constant (the NRMSE, R^2 and Pearson r are undefined or meaningless then).

    >>> s = kinematics_scores([0.0, 10.0, 20.0, 30.0], [1.0, 9.0, 21.0, 29.0])
    >>> round(s["r2"], 4), round(s["nrmse"], 4), round(s["pearson_r"], 4)
    (0.992, 0.0333, 0.9965)
    """
    from sklearn.metrics import r2_score

    arrays = []
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        a = as_array(value, name).astype(np.float64, copy=False)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-d (n,) or (n, 1), got shape {a.shape}")
        if len(a) < 2:
            raise ValueError(f"{name} needs at least 2 values, got {len(a)}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if np.ptp(a) == 0:
            raise ValueError(f"{name} is constant: R^2, NRMSE and Pearson r are undefined")
        arrays.append(a)
    t, p = arrays
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and "
                         f"{len(p)}")
    rmse = float(np.sqrt(np.mean((t - p) ** 2)))
    return {"r2": float(r2_score(t, p)), "nrmse": rmse / float(np.ptp(t)),
            "pearson_r": float(np.corrcoef(t, p)[0, 1])}
