"""params.val_split / params.objective of train_eval: a class-balanced split held out of the
training set, disjoint from what the model trains on; the tuning objective never sees the
test set."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import pytest
import torch

import registry
from registry.datasets.base import DatasetError, Split, holdout
from suite.specs import RunSpec
from suite.worker import execute
from tasks import train_eval as te

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = RunSpec(
    claim_id="t/val", tier="smoke", arm="treatment", seed=0, task="train_eval",
    model="test_cnn", dataset="synthetic", model_args={"width": 4},
    dataset_args={"train_size": 80, "test_size": 32, "size": 16, "num_classes": 4},
    params={"epochs": 2, "batch_size": 20, "lr": 0.05, "schedule": "cosine",
            "val_split": 0.25, "objective": "val_top1"},
    device="cpu",
)


def quiet(*_a, **_k) -> None:
    pass


def digest(x: torch.Tensor) -> str:
    return hashlib.sha1(x.contiguous().numpy().tobytes()).hexdigest()


# -- holdout ---------------------------------------------------------------------------
def test_holdout_is_disjoint_complete_balanced_and_seeded():
    y = torch.arange(100) % 5
    x = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)  # item i holds the value i
    rest, held, idx = holdout(Split(x, y), 20, seed=3, num_classes=5)
    seen_rest = set(rest.x.flatten().tolist())
    seen_held = set(held.x.flatten().tolist())
    assert seen_rest.isdisjoint(seen_held)
    assert seen_rest | seen_held == set(range(100))
    assert sorted(seen_held) == sorted(idx)
    assert Counter(held.y.tolist()) == dict.fromkeys(range(5), 4)  # class-balanced
    assert rest.x.flatten().tolist() == sorted(seen_rest)  # the rest keeps its order
    assert holdout(Split(x, y), 20, seed=3, num_classes=5)[2] == idx
    assert holdout(Split(x, y), 20, seed=4, num_classes=5)[2] != idx


def test_holdout_of_an_item_dataset_uses_its_targets():
    class Items(torch.utils.data.Dataset):
        targets = [i % 2 for i in range(10)]

        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.full((1, 2, 2), i, dtype=torch.uint8), self.targets[i]

    rest, held, idx = holdout(Split(None, None, Items()), 4, seed=0, num_classes=2)
    assert len(rest) == 6 and len(held) == 4
    assert sorted(held.dataset[i][1] for i in range(4)) == [0, 0, 1, 1]
    assert set(rest.dataset.indices).isdisjoint(held.dataset.indices)
    with pytest.raises(DatasetError, match="0 < n < 10"):
        holdout(Split(None, None, Items()), 10, seed=0, num_classes=2)


# -- params ------------------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    ({"objective": "val_top1"}, "needs params.val_split"),
    ({"val_split": 0.1, "objective": "top1"}, "never on the test set"),
    ({"val_split": 0.1, "objective": "test_loss"}, "never on the test set"),
    ({"val_split": 1.5}, "params.val_split must be"),
    ({"val_split": -3}, "params.val_split must be"),
    ({"val_split": True}, "params.val_split must be"),
    ({"val_split": "10%"}, "params.val_split must be"),
])
def test_bad_val_params_are_refused_before_training(params, match):
    with pytest.raises(ValueError, match=match):
        te.resolve_params(params)


def test_val_count():
    assert te.val_count(0.25, 80) == 20 and te.val_count(7, 80) == 7
    with pytest.raises(ValueError, match="at least one on each side"):
        te.val_count(80, 80)


# -- the task ------------------------------------------------------------------------------
def test_metrics_series_and_progress_lines():
    lines: list[str] = []
    r = execute(SPEC, emit=lambda s, **_: lines.append(s))
    assert r["status"] == "ok", r["message"]
    m, s = r["metrics"], r["series"]
    assert m["objective"] == m["val_top1"] == s["val_top1"][-1] == s["objective"][-1]
    assert m["val_top1_err"] == pytest.approx(100.0 - m["val_top1"])
    assert m["val_loss"] == s["val_loss"][-1] and m["best_val_top1"] == max(s["val_top1"])
    assert len(s["val_top1"]) == len(s["val_loss"]) == 2
    assert r["provenance"]["validation"] == {
        "from": "train", "n": 20, "train_n": 60, "seed": 0,
        "indices_sha": r["provenance"]["validation"]["indices_sha"]}
    assert all('"objective": ' in ln and '"val_loss": ' in ln for ln in lines)


def test_objective_names_the_loss():
    r = execute(replace(SPEC, params={**SPEC.params, "objective": "val_loss", "epochs": 1}),
                emit=quiet)
    assert r["metrics"]["objective"] == r["metrics"]["val_loss"]


def test_without_val_split_there_are_no_val_metrics():
    params = {k: v for k, v in SPEC.params.items() if k not in ("val_split", "objective")}
    r = execute(replace(SPEC, params={**params, "epochs": 1}), emit=quiet)
    assert r["status"] == "ok"
    assert not {k for k in r["metrics"] if "val" in k or k == "objective"}
    assert "validation" not in r["provenance"]


def test_validation_items_are_never_trained_on(monkeypatch):
    """Record every batch the training loader yields: none of it is a validation item, and
    every training item that is not held out is used (60 items, batches of 20)."""
    bundle = registry.create_dataset(SPEC.dataset, **SPEC.dataset_args)
    _, held, idx = holdout(bundle.train, 20, seed=0, num_classes=4)
    val_items = {digest(x) for x in held.x}
    train_items = {digest(x) for x in bundle.train.x}
    test_items = {digest(x) for x in bundle.test.x}
    assert len(train_items) == 80 and val_items <= train_items  # items are unique
    seen: list[str] = []
    real_iter = te.TensorLoader.__iter__

    def recording_iter(self):
        for xb, yb in real_iter(self):
            if self.shuffle:  # the training loader (evaluation loaders do not shuffle)
                seen.extend(digest(x) for x in xb)
            yield xb, yb

    monkeypatch.setattr(te.TensorLoader, "__iter__", recording_iter)
    r = execute(SPEC, emit=quiet)
    assert r["status"] == "ok", r["message"]
    assert seen and set(seen).isdisjoint(val_items)
    assert set(seen) == train_items - val_items
    assert set(seen).isdisjoint(test_items)


def test_the_test_set_never_moves_the_objective():
    """Same training data, a different test set: every validation number and the objective
    are bit-identical, while the test metrics change."""
    a = execute(SPEC, emit=quiet)
    other_test = {**SPEC.dataset_args, "test_size": 48}  # the train split is drawn first
    b = execute(replace(SPEC, dataset_args=other_test), emit=quiet)
    assert a["status"] == b["status"] == "ok"
    for k in ("objective", "val_top1", "val_loss", "train_loss"):
        assert a["metrics"][k] == b["metrics"][k], k
    for k in ("objective", "val_top1", "val_loss"):
        assert a["series"][k] == b["series"][k], k
    assert a["series"]["test_loss"] != b["series"]["test_loss"]


def test_resume_keeps_the_validation_history(tmp_path):
    """report() comes before an epoch's checkpoint: a kill in epoch 2's report leaves epoch
    1's checkpoint, and the resumed run's validation series equal an uninterrupted run's."""
    full = execute(SPEC, emit=quiet)

    def killed_in_epoch_2(line, **_):
        if line.startswith("PROGRESS") and '"epoch": 2,' in line:
            raise KeyboardInterrupt  # not an Exception: execute() does not catch it

    with pytest.raises(KeyboardInterrupt):
        execute(SPEC, emit=killed_in_epoch_2, checkpoint_dir=str(tmp_path))
    resumed = execute(SPEC, emit=quiet, checkpoint_dir=str(tmp_path))
    assert resumed["provenance"]["resumed_from_epoch"] == 1
    for k in ("objective", "val_top1", "val_loss"):
        assert resumed["series"][k] == full["series"][k], k
