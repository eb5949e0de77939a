"""The hook specifications are the plugin interface's documentation: every
hook documents each parameter, what it returns, and how its results are combined, and
every hook teledrop calls has a spec."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from types import FunctionType

import pytest

from teledrop.plugins import hookspecs

PACKAGE = Path(hookspecs.__file__).resolve().parent.parent
FIRSTRESULT = "Stops at first non-None result"
ALL = ("All results", "All implementations", "Each implementation")


def specs() -> list[FunctionType]:
    return [obj for _, obj in inspect.getmembers(hookspecs, inspect.isfunction)
            if getattr(obj, "teledrop_spec", None) is not None]


SPECS = specs()


def spec_id(spec: FunctionType) -> str:
    return spec.__name__


def doc(spec: FunctionType) -> str:
    return " ".join(inspect.getdoc(spec).split())  # joins wrapped lines


def test_hookspecs_exist() -> None:
    assert {s.__name__ for s in SPECS} >= {
        "teledrop_config_schema", "teledrop_storage_backends", "teledrop_metadata_backends",
        "teledrop_hasher", "teledrop_authorize_upload", "teledrop_generate_slug",
        "teledrop_check_slug", "teledrop_commit_drop", "teledrop_drop_created",
        "teledrop_drop_deleted"}


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_hook_is_named_and_has_a_docstring(spec: FunctionType) -> None:
    assert spec.__name__.startswith("teledrop_")
    assert inspect.getdoc(spec), spec.__name__


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_parameter_is_documented(spec: FunctionType) -> None:
    for name in inspect.signature(spec).parameters:
        assert f":param {name}:" in doc(spec), f"{spec.__name__}: :param {name}: missing"


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_documented_parameters_exist(spec: FunctionType) -> None:
    params = set(inspect.signature(spec).parameters)
    for name in re.findall(r":param (\w+):", doc(spec)):
        assert name in params, f"{spec.__name__} documents {name!r}, which it does not take"


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_parameters_have_no_defaults(spec: FunctionType) -> None:
    # pluggy never passes a parameter that has a default.
    for param in inspect.signature(spec).parameters.values():
        assert param.default is inspect.Parameter.empty, (spec.__name__, param.name)


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_return_value_is_documented(spec: FunctionType) -> None:
    returns = inspect.signature(spec).return_annotation
    if returns not in ("None", None, inspect.Signature.empty):
        assert ":returns:" in doc(spec), f"{spec.__name__} returns {returns} undocumented"


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_calling_convention_is_stated(spec: FunctionType) -> None:
    text = doc(spec)
    if spec.teledrop_spec["firstresult"]:  # type: ignore[attr-defined]
        assert FIRSTRESULT in text, spec.__name__
    else:
        assert FIRSTRESULT not in text, spec.__name__
        assert any(phrase in text for phrase in ALL), \
            f"{spec.__name__}: say how results are combined ({' / '.join(ALL)})"


def hook_calls() -> dict[str, list[str]]:
    """Where teledrop calls each hook (``pm.hook.<name>(...)``, ``service.hook("<name>",
    ...)``, ``service.notify("<name>", ...)``), by hook name: calls only, so neither an
    implementation nor a mention in a comment counts."""
    calls: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            func, name = node.func, None
            if isinstance(func.value, ast.Attribute) and func.value.attr == "hook":
                name = func.attr
            elif func.attr in ("hook", "notify") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                name = node.args[0].value
            if name is not None and name.startswith("teledrop_"):
                calls.setdefault(name, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return calls


def test_every_called_hook_has_a_spec() -> None:
    called = set(hook_calls())
    assert called, "no hook calls found"
    assert called <= {s.__name__ for s in SPECS}, called - {s.__name__ for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_spec_is_called_somewhere(spec: FunctionType) -> None:
    assert spec.__name__ in hook_calls(), f"{spec.__name__} is never called"


def test_the_call_finder_sees_every_way_of_calling_and_nothing_else() -> None:
    calls = hook_calls()
    assert any(site.startswith("composition.py:") for site in calls["teledrop_storage_backends"])
    assert any(site.startswith("core/inspection.py:") for site in calls["teledrop_hasher"])
    assert any(site.startswith("core/gc.py:") for site in calls["teledrop_drop_deleted"])
    # the built-in plugins implement hooks and call none: an implementation is no call
    assert not any(site.startswith("plugins/") for sites in calls.values() for site in sites)
