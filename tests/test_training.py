"""fit / evaluate: determinism, learning, restored state, and input validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import lightvision
from lightvision.datasets import load_digits
from lightvision.training import as_batches, evaluate, fit, images_to_tensor


def _digits(n=600):
    images, labels = load_digits()
    return images_to_tensor(images[:n].astype(np.float32) / 16), torch.as_tensor(labels[:n])


def _model(seed=0):
    torch.manual_seed(seed)
    return lightvision.create_model("small_cnn", widths=(16, 32))


def test_images_to_tensor_layouts_and_scaling():
    grey = np.full((2, 5, 4), 255, dtype=np.uint8)
    colour = np.arange(2 * 5 * 4 * 3, dtype=np.float64).reshape(2, 5, 4, 3)
    x = images_to_tensor(grey)
    assert x.shape == (2, 1, 5, 4) and x.dtype == torch.float32 and float(x.max()) == 1.0
    y = images_to_tensor(colour)
    assert y.shape == (2, 3, 5, 4) and float(y[1, 2, 4, 3]) == colour[1, 4, 3, 2]
    assert grey.max() == 255  # input untouched
    with pytest.raises(ValueError, match="images"):
        images_to_tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="images"):
        images_to_tensor(np.zeros((2, 3, 3), dtype=bool))


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (None, TypeError, "images must be an array"),
        ("abc", TypeError, "images must be an array"),
        (np.array([[["a"]]]), TypeError, "images must hold real numbers"),
        (np.empty((1, 2, 2), dtype=object), TypeError, "images must hold real numbers"),
        ([[[1.0, 2.0]], [[1.0]]], ValueError, "images must be a rectangular array"),
        (np.full((1, 2, 2), np.nan), ValueError, "images contain NaN"),
        (torch.full((1, 2, 2), float("inf")), ValueError, "images contain NaN"),
        (np.full((1, 2, 2), 1e300), ValueError, "beyond float32's range"),
    ],
)
def test_images_to_tensor_rejects_bad_input(images, error, match):
    with pytest.raises(error, match=match):
        images_to_tensor(images)


def test_images_to_tensor_takes_nested_lists_and_empty_batches():
    assert torch.equal(images_to_tensor([[[0, 1]]]), torch.tensor([[[[0.0, 1.0]]]]))
    assert images_to_tensor(np.zeros((0, 4, 4), dtype=np.uint8)).shape == (0, 1, 4, 4)


def test_fit_learns_digits_and_is_deterministic():
    X, y = _digits()
    Xtr, ytr, Xte, yte = X[:500], y[:500], X[500:], y[500:]
    before = evaluate(_model(), Xte, yte)
    model_a, model_b = _model(), _model()
    hist_a = fit(model_a, Xtr, ytr, epochs=15, batch_size=32, lr=1e-2, progress=False,
                 validation_data=(Xte, yte), random_state=7)
    fit(model_b, Xtr, ytr, epochs=15, batch_size=32, lr=1e-2, progress=False, random_state=7)
    pairs = zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True)
    for (key, a), b in pairs:
        assert torch.equal(a, b), f"{key} differs between two runs with the same seed"
    after = evaluate(model_a, Xte, yte)
    # 15 epochs on 500 digits take a 10-class net from chance (~90 % error) to under 20 %.
    assert before["error"] > 0.6 and after["error"] < 0.2, (before, after)
    assert after["error"] == pytest.approx(hist_a.last("val_error"))
    assert len(hist_a.epochs) == 15 and hist_a.train_seconds > 0
    assert hist_a.epochs[0]["loss"] > hist_a.last("loss")
    assert hist_a.last("lr") == pytest.approx(0.0, abs=1e-9)  # cosine decays to zero


def test_fit_restores_mode_leaves_data_and_global_rng_alone():
    X, y = _digits(64)
    X_copy = X.clone()
    model = _model().eval()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, X, y, epochs=1, progress=False, optimizer="sgd", lr=0.01, schedule="constant")
    assert torch.equal(torch.rand(3), expected), "fit changed the global RNG stream"
    assert not model.training and torch.equal(X, X_copy)


def test_custom_task_and_regression_loss():
    X = torch.randn(64, 3)
    target = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)

    def task(m, xb, yb):
        out = m(xb)
        mse = nn.functional.mse_loss(out, yb)
        return {"loss": mse, "output": out, "task_loss": mse}

    hist = fit(model, X, target, epochs=30, batch_size=8, lr=0.05, task=task, progress=False)
    assert "task_loss" in hist.epochs[0] and hist.last("loss") < 0.05 * hist.epochs[0]["loss"]
    result = evaluate(model, X, target, loss=nn.functional.mse_loss)
    assert set(result) == {"loss"} and result["loss"] < 0.05


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": torch.zeros(0, 1, 8, 8), "y": torch.zeros(0, dtype=torch.long)},
         ValueError, "empty"),
        ({"y": torch.zeros(3, dtype=torch.long)}, ValueError, "same length"),
        ({"X": torch.zeros(8, 1, 8, 8, dtype=torch.uint8)}, TypeError, "images_to_tensor"),
        ({"X": torch.full((8, 1, 8, 8), float("nan"))}, ValueError, "NaN"),
        ({"X": [[1.0]]}, TypeError, "numpy array or a torch tensor"),
        ({"y": torch.zeros(8)}, TypeError, "loss="),
        ({"y": torch.full((8,), 10)}, ValueError, "num_classes=10"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"optimizer": "adam2"}, ValueError, "optimizer"),
        ({"schedule": "step"}, ValueError, "schedule"),
        ({"random_state": "0"}, TypeError, "random_state"),
        ({"validation_data": (torch.zeros(2, 1, 8, 8),)}, TypeError, "validation_data"),
        ({"validation_data": (torch.zeros(2, 1, 8, 8), torch.tensor([0, 12]))},
         ValueError, "validation_data y"),
        ({"loss": nn.functional.cross_entropy, "task": lambda m, x, y: {}}, ValueError, "either"),
        ({"model": "cnn"}, TypeError, "model"),
        ({"device": "bogus"}, ValueError, "device must name a torch device"),
        ({"device": 0}, TypeError, "device must be a str"),
        ({"device": "cpu:x"}, ValueError, "device"),
        ({"loss": "mse"}, TypeError, "loss must be callable"),
        ({"task": 3}, TypeError, "task must be callable"),
        ({"task": lambda m, x, y: m(x)}, TypeError, "task must return a mapping"),
        ({"task": lambda m, x, y: {"output": m(x)}}, TypeError, r"keys \['output'\]"),
        ({"progress": "no"}, TypeError, "progress"),
        ({"X": [], "y": None}, ValueError, "data holds no batches"),
    ],
)
def test_fit_rejects_bad_input(kwargs, error, match):
    args = {"model": _model(), "X": torch.zeros(8, 1, 8, 8),
            "y": torch.zeros(8, dtype=torch.long), "progress": False}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fit(**args)


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        evaluate(_model(), torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="model"):
        evaluate(None, torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    X, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="device must name"):
        evaluate(_model(), X, y, device="bogus")
    with pytest.raises(ValueError, match="either"):
        evaluate(_model(), X, y, loss=nn.functional.cross_entropy, task=lambda m, x, y: {})
    with pytest.raises(TypeError, match="task must be callable"):
        evaluate(_model(), X, y, task="t")
    with pytest.raises(TypeError, match="task must return a mapping"):
        evaluate(_model(), X, y, task=lambda m, x, y: None)
    with pytest.raises(ValueError, match="data holds no batches"):
        evaluate(_model(), [])
    # a task without (n, k) outputs gets the loss only, not an accuracy
    assert set(evaluate(_model(), X, y, task=lambda m, x, y: {"loss": m(x).sum()})) == {"loss"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_fit_names_an_unavailable_device():
    with pytest.raises(ValueError, match="device='cuda': cuda is not available"):
        fit(_model(), torch.zeros(8, 1, 8, 8), torch.zeros(8, dtype=torch.long), device="cuda",
            progress=False)


def test_float64_data_are_cast_to_the_model_dtype():
    """Floating inputs and real targets train a float32 model as float32 data do (the cast is
    per batch, so the result is exactly that of converting first); labels stay integers."""
    X, y = _digits(32)
    a, b = _model(), _model()
    fit(a, X.double(), y, epochs=1, progress=False)
    fit(b, X, y, epochs=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))
    assert evaluate(a, X.double(), y) == evaluate(a, X, y)
    linear = nn.Linear(3, 1)
    target = torch.randn(16, 1, dtype=torch.float64)
    fit(linear, torch.randn(16, 3, dtype=torch.float64), target, loss=nn.functional.mse_loss,
        epochs=1, progress=False)
    assert linear.weight.dtype == torch.float32


def test_history_and_supervised_task_name_bad_arguments():
    from lightvision.training import History, supervised_task

    with pytest.raises(ValueError, match="history is empty"):
        History().last("loss")
    with pytest.raises(KeyError, match=r"no 'acc' in the history; known: \['loss'\]"):
        History(epochs=[{"loss": 1.0}]).last("acc")
    with pytest.raises(TypeError, match="loss must be callable"):
        supervised_task("mse")


def test_as_batches_rejects_bad_settings():
    X = torch.zeros(4, 2)
    for kwargs, error, match in [({"batch_size": 0}, ValueError, "batch_size"),
                                 ({"batch_size": 1.5}, TypeError, "batch_size"),
                                 ({"shuffle": 1}, TypeError, "shuffle"),
                                 ({"generator": 0}, TypeError, "generator"),
                                 ({"labelled": "yes"}, TypeError, "labelled"),
                                 ({"name": 3}, TypeError, "name")]:
        with pytest.raises(error, match=match):
            as_batches(X, **kwargs)


def test_fit_and_evaluate_take_loaders_and_iterables_of_batches():
    from torch.utils.data import DataLoader, TensorDataset

    X, y = _digits(128)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    torch.manual_seed(0)  # no dropout: a DataLoader draws from torch's generator per epoch
    by_list = lightvision.create_model("small_cnn", widths=(16, 32), dropout=0.0)
    by_loader = copy.deepcopy(by_list)
    fit(by_list, batches, epochs=2, lr=1e-2, progress=False)
    fit(by_loader, DataLoader(TensorDataset(X, y), batch_size=32), epochs=2, lr=1e-2,
        progress=False)
    for (key, a), b in zip(by_list.state_dict().items(), by_loader.state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), key
    assert evaluate(by_list, batches) == pytest.approx(evaluate(by_list, X, y))
    assert evaluate(by_list, (X, y)) == pytest.approx(evaluate(by_list, X, y))
    history = fit(_model(), (X, y), epochs=1, progress=False, validation_data=batches)
    assert "val_error" in history.epochs[0]
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(_model(), iter(batches), epochs=2, progress=False)
    with pytest.raises(TypeError, match="schedule='constant'"):
        fit(_model(), iter(batches), epochs=1, progress=False)
    fit(_model(), iter(batches), epochs=1, schedule="constant", progress=False)  # one pass
    with pytest.raises(ValueError, match="no targets"):
        fit(_model(), [X[:32]], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"data y holds labels in \[12, 12\]"):
        fit(_model(), [(X[:4], y[:4]), (X[:4], torch.full((4,), 12))], progress=False)
    with pytest.raises(ValueError, match="data batch 0 must be a pair"):
        fit(_model(), [(X[:4], y[:4], y[:4])], progress=False)


def test_fit_trains_unlabelled_data_with_a_task_and_seeds_like_scikit_learn():
    X, _ = _digits(64)

    def reconstruct(model, xb, yb):
        assert yb is None
        out = model(xb)
        return {"loss": out.square().mean(), "output": out}

    fit(_model(), X, task=reconstruct, epochs=1, progress=False)
    runs = [_model() for _ in range(2)]
    for model in runs:
        fit(model, *_digits(64), epochs=1, progress=False,
            random_state=np.random.RandomState(3))
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(),
                                                 runs[1].state_dict().values(), strict=True))
    fit(_model(), *_digits(64), epochs=1, progress=False, random_state=None)
    fit(_model(), *_digits(64), epochs=1, progress=False,
        random_state=np.random.default_rng(0))


def test_numpy_integer_batch_sizes_work_as_ints():
    X, y = _digits(24)
    a = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    b = copy.deepcopy(a)
    fit(a, X, y, epochs=1, batch_size=np.int64(8), progress=False)
    fit(b, X, y, epochs=1, batch_size=8, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))
    assert evaluate(a, X, y, batch_size=np.int32(8)) == evaluate(a, X, y, batch_size=8)
    assert [len(x) for x, _ in as_batches((X, y), batch_size=np.int64(10))] == [10, 10, 4]


def test_divergence_names_the_epoch_step_and_what_to_change_before_the_step():
    X, y = _digits(24)
    model = _model()
    with pytest.raises(FloatingPointError, match=r"^training diverged at epoch 1, step 2 "
                                                 r"\(loss nan\): lower lr, or check X / y for "
                                                 r"huge values$"):
        fit(model, X, y, epochs=1, batch_size=8, lr=1e30, progress=False)
    # the first step made the weights huge; the second, whose loss is NaN, changed nothing
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(FloatingPointError, match=r"step 1 .*check data for huge values"):
        fit(nn.Linear(3, 1), [(torch.randn(4, 3), torch.full((4, 1), 1e30))],
            loss=nn.functional.mse_loss, epochs=1, progress=False)
