"""train_eval on a micro CNN and tiny synthetic data: divergence and bad params become error
rows, lr schedules, batched augmentation, and checkpoint/resume determinism."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import pairwise

import pytest
import torch

from suite.specs import RunSpec, TaskContext
from suite.worker import execute
from tasks import augment as A
from tasks import train_eval as te

SPEC = RunSpec(
    claim_id="t/micro", tier="smoke", arm="treatment", seed=0, task="train_eval",
    model="test_cnn", dataset="synthetic", model_args={"width": 4},
    dataset_args={"train_size": 64, "test_size": 32, "size": 16, "num_classes": 4},
    params={"epochs": 3, "batch_size": 16, "lr": 0.05, "schedule": "cosine",
            "augment": {"crop_padding": 2, "flip": True}},
    device="cpu",
)



pytestmark = pytest.mark.usefixtures("one_thread")

def with_params(**kw) -> RunSpec:
    return replace(SPEC, params={**SPEC.params, **kw})


def quiet(*_a, **_k) -> None:
    pass


# -- execute: failures become rows ---------------------------------------------------------
def test_execute_ok_result_shape(tmp_path):
    r = execute(SPEC, checkpoint_dir=str(tmp_path / "ck"), emit=quiet)
    assert r["status"] == "ok", r["message"]
    m = r["metrics"]
    for k in ("top1", "top1_err", "top5", "test_loss", "train_loss", "epochs", "params_m"):
        assert k in m and math.isfinite(m[k])
    assert m["epochs"] == 3.0 and m["top1"] + m["top1_err"] == pytest.approx(100.0)
    assert m["top5"] == 100.0  # 4 classes: the top 5 always holds the label
    assert {k: len(v) for k, v in r["series"].items()} == {
        "train_loss": 3, "test_top1": 3, "test_loss": 3, "lr": 3, "test_top5": 3}
    assert r["spec"]["run_key"] == SPEC.run_key
    prov = r["provenance"]
    assert prov["device"] == "cpu" and prov["amp"] == "off" and prov["selected_epoch"] == 3
    assert "tensor" in prov["loader"] and prov["dataset"]["data_seed"] == 0
    assert list((tmp_path / "ck").iterdir()) == []  # the checkpoint goes once the run is done


def test_execute_reports_progress_lines():
    lines = []
    execute(with_params(epochs=2), emit=lambda s, **_: lines.append(s))
    assert [ln.split(" ", 1)[0] for ln in lines] == ["PROGRESS", "PROGRESS"]
    assert '"epoch": 2, "total": 2' in lines[-1]


def test_divergence_is_an_error_naming_epoch_lr_and_fix():
    r = execute(with_params(lr=1e6, schedule="constant", augment={}), emit=quiet)
    assert r["status"] == "error"
    msg = r["message"]
    assert msg.startswith("training diverged: loss = ")
    assert "at epoch 1, step " in msg and "(lr = 1e+06)" in msg
    assert "Lower params.lr" in msg and "warmup_epochs" in msg and "grad_clip" in msg
    assert r["metrics"] == {}


def test_unknown_params_key_is_an_error_with_did_you_mean():
    r = execute(with_params(lrr=0.1), emit=quiet)
    assert r["status"] == "error"
    assert "unknown params 'lrr' (did you mean 'lr'?)" in r["message"]


def test_missing_dataset_is_skipped_not_error(tmp_path):
    spec = replace(SPEC, dataset="cifar10", dataset_args={"root": str(tmp_path)})
    r = execute(spec, emit=quiet)
    assert r["status"] == "skipped"
    assert r["message"].startswith("dataset unavailable: ")
    assert "cifar-10-batches-py" in r["message"]


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    r = execute(replace(SPEC, device="cuda:0"), emit=quiet)
    assert r["status"] == "error" and "CUDA is not available" in r["message"]


def test_select_min_train_loss():
    r = execute(with_params(select="min_train_loss", epochs=3), emit=quiet)
    s = r["series"]
    pick = min(range(3), key=s["train_loss"].__getitem__)
    assert r["provenance"]["selected_epoch"] == pick + 1
    assert r["metrics"]["top1"] == s["test_top1"][pick]
    assert r["metrics"]["best_top1"] == max(s["test_top1"])


def test_bad_select_fails_before_training():
    epochs = []
    ctx = TaskContext(device="cpu", report=lambda e, *_: epochs.append(e))
    with pytest.raises(ValueError, match="params.select"):
        te.run(with_params(select="min_loss"), ctx)
    assert epochs == []


def test_test_every_last_scores_the_test_set_once_with_the_same_weights():
    every = execute(with_params(epochs=2), emit=quiet)
    last = execute(with_params(epochs=2, test_every="last"), emit=quiet)
    assert last["status"] == "ok", last["message"]
    s = last["series"]
    assert len(s["test_top1"]) == len(s["train_loss"]) == 2  # step = epoch, as elsewhere
    assert math.isnan(s["test_top1"][0]) and s["test_top1"][1] == last["metrics"]["top1"]
    # scoring is read-only: the same training run, so the same final numbers
    for k in ("top1", "top5", "test_loss", "train_loss"):
        assert last["metrics"][k] == pytest.approx(every["metrics"][k]), k
    assert every["metrics"]["top1"] == every["series"]["test_top1"][-1]


def test_test_every_last_needs_select_last():
    with pytest.raises(ValueError, match="params.test_every.*params.select"):
        te.resolve_params({"test_every": "last", "select": "min_train_loss"})
    with pytest.raises(ValueError, match="params.test_every"):
        te.resolve_params({"test_every": "sometimes"})


def test_bad_optimizer_and_schedule_are_errors():
    assert "params.optimizer" in execute(with_params(optimizer="lamb"), emit=quiet)["message"]
    assert "params.schedule" in execute(with_params(schedule="step"), emit=quiet)["message"]


# -- lr schedules -----------------------------------------------------------------------------
def P(**kw) -> dict:
    return {**te.DEFAULTS, **kw}


def test_lr_factor_multistep():
    p = P(epochs=6, schedule="multistep", milestones=[2, 4], gamma=0.1)
    f = [te.lr_factor(s, 10, p) for s in range(60)]
    assert f[0] == f[19] == 1.0
    assert f[20] == f[39] == pytest.approx(0.1)
    assert f[40] == f[59] == pytest.approx(0.01)


def test_lr_factor_warmup_then_schedule():
    p = P(epochs=4, schedule="constant", warmup_epochs=1)
    assert [te.lr_factor(s, 4, p) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    p = P(epochs=4, schedule="multistep", milestones=[0], warmup_epochs=1)
    assert te.lr_factor(0, 4, p) == 0.25  # warm-up overrides the schedule
    assert te.lr_factor(4, 4, p) == pytest.approx(0.1)


def test_lr_factor_cosine():
    p = P(epochs=10, schedule="cosine")
    total = 10 * 20
    f = [te.lr_factor(s, 20, p) for s in range(total)]
    assert f[0] == 1.0
    assert f[total // 2] == pytest.approx(0.5)
    assert f[-1] == pytest.approx(0.0, abs=1e-3)  # ends at ≈ 0
    assert all(a >= b for a, b in pairwise(f))
    # with warm-up, the cosine starts at the end of the warm-up
    pw = P(epochs=10, schedule="cosine", warmup_epochs=2)
    assert te.lr_factor(39, 20, pw) == 1.0 and te.lr_factor(40, 20, pw) == 1.0
    assert te.lr_factor(total - 1, 20, pw) == pytest.approx(0.0, abs=1e-3)


def test_lr_factor_onecycle():
    p = P(epochs=10, schedule="onecycle")
    f = [te.lr_factor(s, 10, p) for s in range(100)]
    peak = max(range(100), key=f.__getitem__)
    assert peak == 30 and f[peak] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(0.0, abs=1e-3)


def test_lr_factor_unknown_schedule():
    with pytest.raises(ValueError, match="multistep/cosine/onecycle/constant"):
        te.lr_factor(0, 10, P(schedule="linear"))


def test_resolve_params():
    assert te.resolve_params({"lr": 0.3})["lr"] == 0.3
    assert te.resolve_params({})["epochs"] == te.DEFAULTS["epochs"]
    with pytest.raises(ValueError, match="'epoch' \\(did you mean 'epochs'\\?\\)"):
        te.resolve_params({"epoch": 3})


# -- augmentation -------------------------------------------------------------------------------
def batch(b=6, c=3, h=8, w=10, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (b, c, h, w), generator=g, dtype=torch.int64).to(torch.uint8)


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_crop_padding_zero_is_identity():
    x = batch()
    assert A.random_crop(x, 0, gen()) is x


def test_random_crop_keeps_shape_and_takes_padded_windows():
    x = batch()
    out = A.random_crop(x, 3, gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    xp = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for i in range(x.shape[0]):
        windows = [xp[i, :, dy:dy + 8, dx:dx + 10] for dy in range(7) for dx in range(7)]
        assert any(torch.equal(out[i], wdw) for wdw in windows), i


def test_random_crop_is_deterministic_given_the_generator():
    x = batch(b=32)
    a, b = A.random_crop(x, 4, gen(5)), A.random_crop(x, 4, gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, A.random_crop(x, 4, gen(6)))


def test_random_crop_video():
    x = torch.randint(0, 255, (2, 3, 4, 8, 8), dtype=torch.uint8)
    out = A.random_crop(x, 2, gen())
    assert out.shape == x.shape
    # one shift per clip: every frame of a clip is cropped the same way
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(out[i], xp[i, :, :, dy:dy + 8, dx:dx + 8])]
        assert hits


def test_random_flip_mirrors_about_half_and_undoes_itself():
    x = batch(b=64)
    once = A.random_flip(x, gen(3))
    flipped = [i for i in range(64) if not torch.equal(once[i], x[i])]
    assert 16 < len(flipped) < 48
    for i in range(64):
        assert torch.equal(once[i], x[i].flip(-1)) or torch.equal(once[i], x[i])
    # the same generator state picks the same items: flipping twice is the identity
    assert torch.equal(A.random_flip(once, gen(3)), x)


def test_rotation():
    x = A.normalize(batch(), (0.5,) * 3, (0.25,) * 3)
    assert A.random_rotate(x, 0.0, gen()) is x
    out = A.random_rotate(x, 15.0, gen())
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.equal(out, A.random_rotate(x, 15.0, gen()))
    assert not torch.equal(out, x)


def test_normalize():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    out = A.normalize(x, (0.5,), (0.5,))
    assert out.flatten().tolist() == [-1.0, 1.0] and out.dtype == torch.float32


def test_augment_spec_from_params():
    assert A.AugmentSpec.from_params({}) == A.AugmentSpec()
    assert not A.AugmentSpec().active
    assert A.AugmentSpec.from_params({"augment": ["crop", "flip"]}) == A.AugmentSpec(4, True)
    s = A.AugmentSpec.from_params({"augment": {"rotate_deg": 10, "flip": True}})
    assert s == A.AugmentSpec(0, True, 10.0) and s.active
    with pytest.raises(ValueError, match="unknown keys \\['crop'\\]"):
        A.AugmentSpec.from_params({"augment": {"crop": 4}})
    with pytest.raises(ValueError, match="a table or a list"):
        A.AugmentSpec.from_params({"augment": "crop"})


def test_augment_batch_order_and_determinism():
    x = batch(b=16)
    spec = A.AugmentSpec(crop_padding=2, flip=True, rotate_deg=5)
    a = A.augment_batch(x, spec, gen(9), (0.5,) * 3, (0.25,) * 3)
    b = A.augment_batch(x, spec, gen(9), (0.5,) * 3, (0.25,) * 3)
    assert a.dtype == torch.float32 and a.shape == x.shape and torch.equal(a, b)
    plain = A.augment_batch(x, A.AugmentSpec(), gen(9), (0.5,) * 3, (0.25,) * 3)
    assert torch.equal(plain, A.normalize(x, (0.5,) * 3, (0.25,) * 3))


# -- checkpoint and resume ---------------------------------------------------------------------
class Killed(Exception):
    pass


def _run(spec: RunSpec, ckpt: str | None, kill_at: int | None = None):
    def report(epoch, total, metrics):
        if epoch == kill_at:
            raise Killed(epoch)

    ctx = TaskContext(device="cpu", checkpoint_path=ckpt, report=report)
    return te.run(spec, ctx), ctx


def _same_numbers(a, b) -> None:
    timing = {"wall_s", "images_per_s"}
    assert {k: v for k, v in a.metrics.items() if k not in timing} == {
        k: v for k, v in b.metrics.items() if k not in timing}
    assert a.series == b.series


def test_resume_after_a_kill_gives_identical_results(tmp_path):
    straight, ctx0 = _run(SPEC, None)
    assert "resumed_from_epoch" not in ctx0.provenance

    ckpt = str(tmp_path / "run.pt")
    # report() comes before the epoch's checkpoint, so a kill in epoch 3's report leaves the
    # checkpoint of epoch 2 behind
    with pytest.raises(Killed):
        _run(SPEC, ckpt, kill_at=3)
    state = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == 2 and state["run_key"] == SPEC.run_key

    resumed, ctx = _run(SPEC, ckpt)
    assert ctx.provenance["resumed_from_epoch"] == 2
    _same_numbers(resumed, straight)


def test_checkpoint_of_another_run_is_ignored(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    other = replace(SPEC, seed=1)
    with pytest.raises(Killed):
        _run(other, ckpt, kill_at=2)
    out, ctx = _run(SPEC, ckpt)
    assert "resumed_from_epoch" not in ctx.provenance
    straight, _ = _run(SPEC, None)
    _same_numbers(out, straight)


def test_corrupt_checkpoint_restarts_the_run(tmp_path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"not a checkpoint")
    out, ctx = _run(with_params(epochs=1), str(ckpt))
    assert "resumed_from_epoch" not in ctx.provenance and out.metrics["epochs"] == 1.0


def test_epochs_zero_is_a_task_failure():
    with pytest.raises(ValueError, match="epochs must be an integer ≥ 1"):
        te.run(with_params(epochs=0), TaskContext(device="cpu"))
