"""Registries: names, aliases, did-you-mean errors, duplicate registration, lazy imports, and
that the planning side of the suite never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import registry
from registry import Registry, UnknownNameError, did_you_mean


@pytest.fixture
def reg() -> Registry:
    r = Registry("widget")
    r.register("double", lambda x: 2 * x, aliases=("twice", "x2"), help="doubles",
               family="arith")
    r.register("Square-It", lambda x: x * x)
    return r


def test_create_by_name_and_alias(reg):
    assert reg.create("double", x=3) == 6
    assert reg.create("twice", x=4) == 8
    assert reg.create("X2", x=1) == 2  # case-insensitive
    assert reg.create("square_it", x=3) == 9  # '-' and '_' are the same, names are lowercased
    assert reg.create("  square-it ", x=2) == 4
    assert reg.resolve("twice") == "double"
    assert reg.names() == ["double", "square_it"] and len(reg) == 2
    assert [e.name for e in reg] == ["double", "square_it"]
    e = reg.entry("twice")
    assert e.aliases == ("twice", "x2") and e.help == "doubles" and e.meta == {"family": "arith"}


def test_contains(reg):
    assert "double" in reg and "twice" in reg and "SQUARE-IT" in reg
    assert "triple" not in reg and 3 not in reg and None not in reg


def test_unknown_name_suggests_and_names_the_ls_command(reg):
    with pytest.raises(UnknownNameError) as ei:
        reg.create("doubel", x=1)
    err = ei.value
    msg = str(err)
    assert msg.startswith("unknown widget 'doubel'.")
    assert "Did you mean 'double'?" in msg
    assert "python -m suite ls widgets" in msg and "all 2 widgets" in msg
    assert err.suggestions == ["double"] and err.kind == "widget" and err.name == "doubel"
    assert isinstance(err, KeyError)  # callers may catch KeyError
    assert not msg.startswith("'")  # not KeyError's quoted repr


def test_unknown_name_without_close_match(reg):
    with pytest.raises(UnknownNameError) as ei:
        reg.get("zzzzzz")
    assert "Did you mean" not in str(ei.value) and "python -m suite ls widgets" in str(ei.value)


def test_suggestions_include_aliases(reg):
    with pytest.raises(UnknownNameError) as ei:
        reg.resolve("twise")
    assert "'twice'" in str(ei.value)


def test_did_you_mean():
    assert did_you_mean("sofpool", ["softpool", "max", "avg"]) == ["softpool"]
    assert did_you_mean("SOFTPOOL", ["softpool"]) == ["softpool"]
    assert did_you_mean("qqq", ["softpool", "max"]) == []
    assert len(did_you_mean("resnet", [f"resnet{i}" for i in range(10)], n=3)) == 3


def test_duplicate_registration_raises(reg):
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("double", lambda: 0)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("Double", lambda: 0)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("twice", lambda: 0)  # an existing alias
    with pytest.raises(ValueError, match="clashes"):
        reg.register("triple", lambda: 0, aliases=("x2",))


def test_failed_registration_leaves_nothing_behind(reg):
    with pytest.raises(ValueError, match="clashes"):
        reg.register("triple", lambda x: 3 * x, aliases=("x2",))
    assert "triple" not in reg


def test_decorator():
    r = Registry("op")

    @r.decorator(aliases=("neg",))
    def negate(x):
        return -x

    @r.decorator("ident")
    def whatever(x):
        return x

    assert r.create("neg", x=2) == -2 and r.create("ident", x=5) == 5
    assert negate(1) == -1  # the function itself is returned unchanged


def test_lazy_entry_is_imported_on_first_use(tmp_path, monkeypatch):
    mod = "poolrepro_lazy_probe_mod"
    (tmp_path / f"{mod}.py").write_text(textwrap.dedent("""
        class Factory:
            @staticmethod
            def make(n=1):
                return ["made"] * n
        LOADED = True
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, mod, raising=False)
    r = Registry("thing")
    r.register("probe", f"{mod}:Factory.make", aliases=("p",))
    assert "probe" in r and r.names() == ["probe"]
    r.resolve("p")
    assert mod not in sys.modules  # registering, listing, resolving import nothing
    try:
        assert r.create("p", n=2) == ["made", "made"]
        assert mod in sys.modules
    finally:
        sys.modules.pop(mod, None)


def test_lazy_entry_with_a_broken_target(tmp_path, monkeypatch):
    r = Registry("thing")
    r.register("ghost", "poolrepro_no_such_module_xyz:f")
    r.register("attr", "registry._registry:no_such_attr")
    with pytest.raises(ModuleNotFoundError):
        r.get("ghost")
    with pytest.raises(AttributeError):
        r.get("attr")


def test_suite_registries_hold_the_vocabulary():
    from tasks import TASKS

    assert {"max", "avg", "softpool", "poolskip", "identity"} <= set(registry.POOLS.names())
    assert {"test_cnn", "all_cnn_c", "cifar_resnet56"} <= set(registry.MODELS.names())
    assert {"synthetic", "fashion_mnist", "fashion_mnist_32", "cifar10"} <= set(
        registry.DATASETS.names())
    assert set(TASKS.names()) >= {"train_eval", "param_count"}
    assert "top1" in TASKS.entry("train").meta["metrics"]
    for e in registry.MODELS:
        assert isinstance(e.target, str) and ":" in e.target  # every model entry is lazy
        assert len(e.meta["input_size"]) in (3, 4)


def test_create_pool_and_model_by_name():
    import torch

    pool = registry.create_pool("soft", kernel_size=2)
    assert pool(torch.rand(1, 2, 4, 4)).shape == (1, 2, 2, 2)
    same = registry.create_pool(torch.nn.MaxPool2d, kernel_size=2)  # a class passes through
    assert isinstance(same, torch.nn.MaxPool2d)
    m = registry.create_model("test_cnn", num_classes=3, in_chans=1, width=4)
    assert m(torch.rand(2, 1, 16, 16)).shape == (2, 3)
    with pytest.raises(UnknownNameError, match="Did you mean 'test_cnn'"):
        registry.create_model("test_cnm")


MINI_TASKS = """
[papers.demo]
title = "demo"
[defaults]
task = "train_eval"
[defaults.tiers.smoke]
dataset = "synthetic"
[[claim]]
id = "demo/a"
paper = "demo"
source = "s"
model = "all_cnn_c"
dataset = "cifar10"
model_args = { pool = "softpool" }
expect = { kind = "delta", metric = "top1", baseline = { model_args = { pool = "max" } } }
[claim.tiers.smoke]
[[claim]]
id = "demo/b"
paper = "demo"
source = "s"
extends = "demo/a"
task = "param_count"
expect = { kind = "absolute", metric = "params", value = 1.0 }
"""


def test_planning_imports_no_torch(repo_root, tmp_path):
    (tmp_path / "tasks.toml").write_text(MINI_TASKS)
    code = textwrap.dedent(f"""
        import sys
        import registry, suite.claims, suite.plan, suite.verdict, suite.report
        from suite.claims import load_claims
        from suite.errors import ClaimsError
        from suite.plan import make_plan
        try:  # the repo's own file exercises every name lookup (valid or not)
            load_claims({str(repo_root / "tasks.toml")!r})
        except ClaimsError:
            pass
        papers, claims = load_claims({str(tmp_path / "tasks.toml")!r})
        for tier in ("smoke", "mini", "full"):
            make_plan(claims, tier)
        assert len(make_plan(claims, "smoke").runs) == 9  # a: 2 arms x 3 seeds, b: 3
        registry.MODELS.resolve("all_cnn_c"), registry.POOLS.entry("softpool").help
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "timm"))
        assert not bad, bad
        print("torch-free")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(repo_root)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "torch-free"
