"""The singularity analysis (tasks/singularity.py; Sun et al. AAAI 2025, Figure 4): metrics
against hand-computed values on a tiny net with known weights, the shortcut-op exclusion,
checkpoint loading, the ``analyze singularity`` CLI on a saved checkpoint, and the analysis
inside train_eval."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import registry
from suite.cli import main as cli
from suite.specs import RunSpec, TaskContext, artifact_bytes
from tasks import TASKS
from tasks import singularity as sg

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net() -> nn.Module:
    """conv 1→3 (1×1, no bias) with weights 1, 2, 0 — the third channel exactly zero — then
    ReLU, global average, linear 3→2 with rows [1, 1, 1] and [1, 0, 0]."""
    conv = nn.Conv2d(1, 3, 1, bias=False)
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0, 0.0]).view(3, 1, 1, 1))
        lin.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin)


# hand-computed (module docstring's definitions)
# conv: w = (1, 2, 0), n = 3, ‖w‖₁ = 3, ‖w‖₂ = √5
CONV_HOYER = (math.sqrt(3) - 3 / math.sqrt(5)) / (math.sqrt(3) - 1)  # 0.53331
# linear: w = (1, 1, 1, 1, 0, 0), n = 6, ‖w‖₁ = 4, ‖w‖₂ = 2
LIN_HOYER = (math.sqrt(6) - 2) / (math.sqrt(6) - 1)  # 0.31010


def test_layer_values_by_hand():
    rep = sg.analyze(tiny_net())
    conv, lin = rep.layers
    assert (conv.index, conv.name, conv.kind, conv.shape, conv.n) == (0, "0", "Conv2d",
                                                                    (3, 1, 1, 1), 3)
    assert conv.l2l1 == pytest.approx(CONV_HOYER, abs=1e-12)
    assert conv.l2l1_raw == pytest.approx(math.sqrt(5) / 3, abs=1e-12)
    assert conv.zero_frac == pytest.approx(1 / 3)  # the 0 of channel 3; 1 and 2 ≫ 1% rms
    assert conv.elim_frac == pytest.approx(1 / 3)  # channel 3 has ‖W[c]‖ = 0
    assert lin.l2l1 == pytest.approx(LIN_HOYER, abs=1e-12)
    assert lin.l2l1_raw == pytest.approx(0.5)
    assert lin.zero_frac == pytest.approx(2 / 6)
    assert lin.elim_frac == 0.0  # rows have norms √3 and 1


def test_summary_metrics_by_hand():
    m = sg.analyze(tiny_net()).metrics()
    # two layers: the shallow third is ⌈2/3⌉ = 1 layer, the conv
    assert m["n_layers"] == 2
    assert m["l2l1_max_shallow"] == pytest.approx(CONV_HOYER)
    assert m["l2l1_mean_shallow"] == pytest.approx(CONV_HOYER)
    assert m["l2l1_max"] == pytest.approx(CONV_HOYER)
    assert m["l2l1_mean"] == pytest.approx((CONV_HOYER + LIN_HOYER) / 2)
    assert m["zero_frac_max_shallow"] == m["zero_frac_mean_shallow"] == pytest.approx(1 / 3)
    assert m["zero_frac_mean"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m["elim_frac_mean_shallow"] == pytest.approx(1 / 3)
    assert m["elim_frac_mean"] == pytest.approx(1 / 6)
    assert "dead_frac_mean" not in m  # no batch, no dead-unit measure
    assert set(m) <= set(sg.METRICS)
    assert set(sg.METRICS) == set(TASKS.entry("train_eval").meta["metrics"]) & set(sg.METRICS)


def test_dead_units_by_hand():
    x = torch.rand(4, 1, 5, 5) + 0.1  # positive inputs: channels 1 and 2 always > 0
    rep = sg.analyze(tiny_net(), x)
    assert rep.dead == (("1", pytest.approx(1 / 3)),)  # channel 3 outputs 0 everywhere
    assert rep.metrics()["dead_frac_mean"] == pytest.approx(1 / 3)
    assert rep.series()["relu_dead_frac"] == [pytest.approx(1 / 3)]
    # a channel that is zero on 2% of positions is alive at the 99% threshold
    y = torch.ones(50, 3, 1, 1)
    y[0, 0] = -1.0
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    assert sg.dead_units(net, y) == [("1", 0.0)]
    y[:, 1] = -1.0  # channel 2 always negative
    assert sg.dead_units(net, y) == [("1", pytest.approx(1 / 3))]


@pytest.mark.parametrize("w, hoyer, zero, elim", [
    (torch.zeros(4, 3), 1.0, 1.0, 1.0),                      # an all-zero layer
    (torch.tensor([[0.0, 0.0], [0.0, 7.0]]), 1.0, 0.75, 0.5),  # one non-zero weight
    (torch.full((5, 4), -0.3), 0.0, 0.0, 0.0),               # all |w| equal
])
def test_extremes(w, hoyer, zero, elim):
    st = sg.weight_stats(w)
    assert st["l2l1"] == pytest.approx(hoyer, abs=1e-12)
    assert st["zero_frac"] == pytest.approx(zero)
    assert st["elim_frac"] == pytest.approx(elim)


def test_scale_invariance():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    a, b = sg.weight_stats(w), sg.weight_stats(1e-3 * w)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-6)  # float32 rounding of 1e-3·w


def test_random_layers_sit_at_the_known_baselines():
    g = torch.Generator().manual_seed(0)
    uniform = sg.weight_stats(torch.rand(64, 64, 3, 3, generator=g) * 2 - 1)["l2l1"]
    gauss = sg.weight_stats(torch.randn(64, 64, 3, 3, generator=g))
    assert uniform == pytest.approx(1 - math.sqrt(3) / 2, abs=0.01)  # ≈ 0.134
    assert gauss["l2l1"] == pytest.approx(1 - math.sqrt(2 / math.pi), abs=0.01)  # ≈ 0.202
    assert gauss["zero_frac"] == pytest.approx(0.008, abs=0.003)


def test_shortcut_op_convs_stay_out_of_the_series():
    plain = registry.create_model("cifar_resnet_thin", depth=8, width=0.5)
    ps = registry.create_model("cifar_resnet_thin", depth=8, width=0.5, skip="poolskip")
    rp, rs = sg.analyze(plain), sg.analyze(ps)
    assert [s.name for s in rp.series_layers] == [s.name for s in rs.series_layers]
    # ResNet-8: stem, 3 blocks × 2 convs, 2 projection shortcuts, head = 10 layers; Pool Skip
    # adds one conv after each of the 6 block convs
    inner = [s for s in rs.layers if s.in_skip_op]
    assert len(inner) == 6 and all(s.index == -1 and ".skip" in s.name for s in inner)
    assert len(rs.series()["layer_l2l1"]) == len(rp.series()["layer_l2l1"]) == 10
    assert [s.index for s in rp.series_layers] == list(range(10))


def test_plot_is_a_png():
    png = sg.plot({"a": sg.analyze(tiny_net()), "b": sg.analyze(tiny_net())}, "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# -- checkpoints -----------------------------------------------------------------------
def test_load_state_dict_forms(tmp_path):
    sd = tiny_net().state_dict()
    for i, obj in enumerate([sd, {"model": sd, "epoch": 3}, {"state_dict": sd},
                             {f"module.{k}": v for k, v in sd.items()}]):
        torch.save(obj, tmp_path / f"{i}.pt")
        got = sg.load_state_dict(str(tmp_path / f"{i}.pt"))
        assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_load_state_dict_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        sg.load_state_dict(str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only"):
        sg.load_state_dict(str(tmp_path / "junk.pt"))
    torch.save({"epoch": 3}, tmp_path / "nosd.pt")
    with pytest.raises(ValueError, match="holds no state_dict"):
        sg.load_state_dict(str(tmp_path / "nosd.pt"))


def _checkpoint(tmp_path) -> tuple[str, nn.Module]:
    torch.manual_seed(0)
    model = registry.create_model("cifar_resnet_thin", depth=8, width=0.5, num_classes=10)
    with torch.no_grad():  # eliminate two channels of the stem conv
        model.stem[0].weight[:2].zero_()
    path = tmp_path / "r8.pt"
    torch.save(model.state_dict(), path)
    return str(path), model


def test_cli_on_a_saved_checkpoint(tmp_path, capsys):
    path, model = _checkpoint(tmp_path)
    out = tmp_path / "figs"
    code = cli(["analyze", "singularity", "--model", "cifar_resnet_thin", "--checkpoint", path,
                "-m", "depth=8", "-m", "width=0.5", "-m", "num_classes=10",
                "--compare-model", "cifar_resnet_thin", "--compare-model-arg", "skip=poolskip",
                "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    want = sg.analyze(model).metrics()
    assert result["metrics"] == pytest.approx(want)
    assert result["layers"][0]["name"] == "stem.0"
    assert result["layers"][0]["elim_frac"] == pytest.approx(2 / 8)  # 8 stem channels
    assert result["compare"]["model"] == "cifar_resnet_thin"
    assert json.loads((out / "singularity.json").read_text())["metrics"] == pytest.approx(want)
    assert (out / "singularity.png").read_bytes()[:4] == b"\x89PNG"
    # the table form
    assert cli(["analyze", "singularity", "--model", "cifar_resnet_thin", "--checkpoint", path,
                "-m", "depth=8", "-m", "width=0.5", "-m", "num_classes=10"]) == 0
    text = capsys.readouterr().out
    assert "stem.0" in text and "l2l1_max_shallow" in text


def test_cli_errors_name_the_fix(tmp_path, capsys):
    path, _ = _checkpoint(tmp_path)
    # trained with width 0.5: a default-width model does not fit
    assert cli(["analyze", "singularity", "--model", "cifar_resnet_thin", "--checkpoint", path,
                "-m", "depth=8"]) == 2
    err = capsys.readouterr().err
    assert "does not fit model 'cifar_resnet_thin'" in err and "--model-arg" in err
    assert cli(["analyze", "singularity", "--model", "cifar_resnet_tin"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert cli(["analyze", "singularity", "--model", "test_cnn", "--checkpoint",
                str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["analyze", "singularity", "--model", "test_cnn", "-m", "width"])


def test_cli_dead_units_with_a_dataset(capsys):
    assert cli(["analyze", "singularity", "--model", "test_resnet", "-m", "width=4",
                "--dataset", "synthetic", "-a", "test_size=16", "-a", "size=16",
                "--batch", "8", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert 0.0 <= m["dead_frac_mean"] <= 1.0


# -- inside train_eval and as a task ---------------------------------------------------
def test_train_eval_runs_the_analysis_on_its_trained_model():
    spec = RunSpec(claim_id="x", tier="smoke", arm="treatment", seed=0, task="train_eval",
                   model="cifar_resnet_thin", dataset="synthetic",
                   model_args={"depth": 8, "width": 0.25, "skip": "poolskip"},
                   dataset_args={"train_size": 64, "test_size": 32, "size": 16},
                   params={"epochs": 1, "batch_size": 32, "analyze": ["singularity"]})
    from tasks.train_eval import run

    r = run(spec, TaskContext(device="cpu"))
    assert r.metrics["n_layers"] == 10 and 0 < r.metrics["l2l1_max_shallow"] < 1
    assert 0 <= r.metrics["dead_frac_mean"] <= 1 and r.metrics["gflops_per_image"] > 0
    assert len(r.series["layer_l2l1"]) == 10 and len(r.series["train_loss"]) == 1
    assert artifact_bytes(r.artifacts["singularity_plot"])[0] == "image/png"
    assert len(r.artifacts["singularity_layers"]) == 16  # 10 + the six Pool Skip convs
    with pytest.raises(ValueError, match="params.analyze"):
        run(RunSpec(**{**spec.__dict__, "params": {"analyze": ["nope"]}}),
            TaskContext(device="cpu"))


def test_singularity_task_compares_two_models(tmp_path):
    path, model = _checkpoint(tmp_path)
    spec = RunSpec(claim_id="x", tier="smoke", arm="treatment", seed=0, task="singularity",
                   model="cifar_resnet_thin", dataset="",
                   model_args={"depth": 8, "width": 0.5, "num_classes": 10},
                   params={"checkpoint": path, "compare_model": "cifar_resnet_thin",
                           "compare_model_args": {"skip": "poolskip"}})
    r = TASKS.get("singularity")(spec, TaskContext(device="cpu"))
    assert r.metrics["l2l1_max_shallow"] == pytest.approx(sg.analyze(model).metrics()[
        "l2l1_max_shallow"])
    assert "compare_l2l1_max_shallow" in r.metrics and "compare_layers" in r.artifacts
    with pytest.raises(ValueError, match="unknown params"):
        TASKS.get("singularity")(RunSpec(**{**spec.__dict__, "params": {"chekpoint": path}}),
                                 TaskContext(device="cpu"))
