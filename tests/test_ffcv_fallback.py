"""The loader choice without FFCV: `auto` falls back to the torch path and says why, a forced
`ffcv` and `data prepare` say how to enable it. Runs with or without the ffcv extra."""

from __future__ import annotations

import pytest
import torch

from registry.datasets import beton
from registry.datasets.base import DatasetError, Split
from tasks.ffcv_loader import choose_loader


@pytest.fixture
def no_ffcv(monkeypatch, tmp_path):
    monkeypatch.setattr(beton, "ffcv_installed", lambda: False)

    def refuse():
        raise DatasetError(f"FFCV is not available here (No module named 'ffcv'); "
                           f"{beton.ENABLE_HINT}")

    monkeypatch.setattr(beton, "import_ffcv", refuse)
    monkeypatch.setenv(beton.CACHE_ENV, str(tmp_path / "beton"))


def _split(in_memory: bool) -> Split:
    x, y = torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.arange(8) % 2
    return Split(x, y) if in_memory else Split(None, None, torch.utils.data.TensorDataset(x, y))


def test_auto_falls_back_and_records_why(no_ffcv):
    kind, reason, path = choose_loader("auto", _split(True))
    assert (kind, path) == ("tensor", None) and "ffcv is not installed" in reason
    kind, reason, _ = choose_loader("auto", _split(False))
    assert kind == "torch" and "poolrepro[ffcv]" in reason


def test_forced_ffcv_says_how_to_enable_it(no_ffcv):
    with pytest.raises(DatasetError, match=r"pip install 'poolrepro\[ffcv\]'"):
        choose_loader("ffcv", _split(True))
    with pytest.raises(ValueError, match="params.loader must be one of"):
        choose_loader("fast", _split(True))
    with pytest.raises(ValueError, match="in-memory"):
        choose_loader("tensor", _split(False))


def test_data_prepare_without_ffcv_exits_2_with_the_hint(no_ffcv, capsys):
    from suite.cli import main

    assert main(["data", "prepare", "synthetic", "--no-progress"]) == 2
    assert "poolrepro[ffcv]" in capsys.readouterr().err


def test_train_eval_records_the_loader(no_ffcv):
    from suite.specs import RunSpec
    from suite.worker import execute

    spec = RunSpec(claim_id="t", tier="smoke", arm="treatment", seed=0, task="train_eval",
                   model="test_cnn", dataset="synthetic", model_args={"width": 4},
                   dataset_args={"train_size": 64, "test_size": 32, "size": 8},
                   params={"epochs": 1, "batch_size": 32}, device="cpu")
    r = execute(spec, emit=lambda *a, **k: None)
    assert r["status"] == "ok", r["message"]
    assert r["provenance"]["loader"] == "tensor"
    assert "not installed" in r["provenance"]["loader_reason"]
    r = execute(RunSpec(**{**spec.__dict__, "params": {**spec.params, "loader": "ffcv"}}),
                emit=lambda *a, **k: None)
    assert r["status"] == "skipped" and "poolrepro[ffcv]" in r["message"]
