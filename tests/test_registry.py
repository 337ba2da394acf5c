"""The Registry class and the public model helpers."""

from __future__ import annotations

import pytest

import lightvision
from lightvision.registry import REGISTRIES, Registry, UnknownComponentError


@pytest.fixture
def reg():
    reg = Registry("widget")

    @reg.register(tags={"tiny", "fast"}, test_params={"n": 1}, bench_params={"n": 5}, size=3)
    def square(n=2):
        return n * n

    @reg.register(name="cube_v2", tags={"tiny"})
    def cube(n=2):
        return n**3

    return reg


def test_register_and_create(reg):
    assert reg.create("square", n=3) == 9
    assert reg.create("cube_v2") == 8
    entry = reg.get("square")
    assert entry.tags == {"tiny", "fast"}
    assert dict(entry.test_params) == {"n": 1} and dict(entry.bench_params) == {"n": 5}
    assert entry.meta["size"] == 3
    assert entry.create(**entry.test_params) == 1
    assert "square" in reg and "cube" not in reg and len(reg) == 2


def test_list_filters_by_pattern_and_tags(reg):
    assert reg.list() == ["cube_v2", "square"] == list(reg)
    assert reg.list("sq*") == ["square"]
    assert reg.list(tags={"fast"}) == ["square"]
    assert reg.list(tags="tiny") == ["cube_v2", "square"]
    assert reg.list("nothing*") == []


def test_duplicate_name_is_an_error(reg):
    with pytest.raises(ValueError, match="duplicate widget name 'square'"):
        reg.register(lambda: 0, name="square")


def test_unknown_name_suggests_close_matches(reg):
    with pytest.raises(UnknownComponentError, match="did you mean 'square'") as info:
        reg.get("sqare")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(KeyError, match="unknown widget 'zzz'"):
        reg.create("zzz")


def test_bad_arguments(reg):
    with pytest.raises(TypeError, match="name"):
        reg.get(3)
    with pytest.raises(TypeError, match="pattern"):
        reg.list(3)
    with pytest.raises(TypeError, match="tags"):
        reg.register(lambda: 0, name="x", tags="tiny")


def test_entries_are_read_only(reg):
    with pytest.raises(TypeError):
        reg.get("square").test_params["n"] = 7


def test_lazy_population():
    reg = Registry("model", modules=("lightvision.models",))
    assert not reg._loaded
    assert isinstance(reg, Registry) and len(REGISTRIES) >= 6


def test_public_model_helpers():
    assert "small_cnn" in lightvision.list_models()
    assert lightvision.list_models("small*", tags=("reference",)) == ["small_cnn"]
    assert lightvision.create_model("small_cnn", num_classes=3).num_classes == 3
    with pytest.raises(KeyError, match="did you mean 'small_cnn'"):
        lightvision.create_model("smal_cnn")
    with pytest.raises(ValueError, match="num_classes"):
        lightvision.create_model("small_cnn", num_classes=0)
    with pytest.raises(ValueError, match="widths"):
        lightvision.create_model("small_cnn", widths=())


def test_names_are_lower_snake_case_and_former_names_resolve_with_a_warning(reg):
    class Widget:
        pass

    with pytest.raises(ValueError, match="lower_snake_case, got 'Widget'"):
        reg.register(Widget)
    reg.register(Widget, name="widget", deprecated_names=("Widget",))
    with pytest.warns(DeprecationWarning, match="widget name 'Widget' is deprecated; use 'widget'"):
        assert reg.get("Widget").obj is Widget
    with pytest.warns(DeprecationWarning):
        assert isinstance(reg.create("Widget"), Widget)
    assert "Widget" not in reg.list() and "widget" in reg
    with pytest.raises(ValueError, match="duplicate widget name 'Widget'"):
        reg.register(lambda: 0, name="other", deprecated_names=("Widget",))
    with pytest.raises(TypeError, match="deprecated_names"):
        reg.register(lambda: 0, name="third", deprecated_names="w")


def test_register_and_registry_arguments_are_checked(reg):
    def widget():
        return 0

    for kwargs, error, match in [
        ({"name": ""}, ValueError, "name must be a non-empty str, got ''"),
        ({"name": 3}, TypeError, "name must be a non-empty str, got int"),
        ({"name": "Bad Name"}, ValueError, "lower_snake_case"),
        ({"tags": 5}, TypeError, "tags must be an iterable of str"),
        ({"tags": ["ok", 1]}, TypeError, "tags must be strs"),
        ({"deprecated_names": [""]}, TypeError, "deprecated_names must hold non-empty strs"),
        ({"deprecated_names": ["a", "a"]}, ValueError, "deprecated_names repeats"),
        ({"name": "w", "deprecated_names": ["w"]}, ValueError, "both the name and a deprecated"),
        ({"test_params": [("n", 1)]}, TypeError, "test_params must be a mapping"),
        ({"bench_params": 1}, TypeError, "bench_params must be a mapping"),
    ]:
        with pytest.raises(error, match=match):
            reg.register(widget, **kwargs)
        with pytest.raises(error, match=match):  # as a decorator: raised before decorating
            reg.register(**kwargs)(widget)
    with pytest.raises(TypeError, match="a widget must be a class or a function, got int"):
        reg.register(3, name="three")
    assert reg.list() == ["cube_v2", "square"]  # nothing registered by the failures
    with pytest.raises(TypeError, match="tags must be a str or an iterable"):
        reg.list(tags=3)
    with pytest.raises(TypeError, match="kind"):
        Registry("")
    with pytest.raises(TypeError, match="modules"):
        Registry("widget", modules="lightvision.models")


def test_lookups_name_the_argument_the_name_came_from():
    import torch

    reg = Registry("widget")
    reg.register(lambda: 1, name="square")
    with pytest.raises(UnknownComponentError, match=r"^name: unknown widget 'zzz' \(known: "
                                                    r"square\)$"):
        reg.get("zzz")
    with pytest.raises(TypeError, match="^method must be a str naming a widget, got int$"):
        reg.get(3, argument="method")
    model, x = lightvision.create_model("small_cnn", widths=(4, 8)), torch.randn(2, 1, 28, 28)
    for method, error, match in [("bogus", ValueError, "method: unknown pruner 'bogus'"),
                                 ("", ValueError, "method: unknown pruner ''"),
                                 (None, TypeError, "method must be a str naming a pruner"),
                                 (3, TypeError, "method must be a str"),
                                 (True, TypeError, "naming a pruner, got bool")]:
        with pytest.raises(error, match=match):
            lightvision.prune(model, x, method=method)
