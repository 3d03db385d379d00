"""The repository's own tasks.toml at the smoke tier: one claim of each paper runs end to
end on synthetic data (the same code path as mini and full, at micro scale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLAIMS = ",".join([
    "allconv/c10/strided_cnn_c-vs-model_c",   # All-CNN family, delta
    "allconv/params/model_c",                 # a parameter-count claim
    "softpool/imagenet/resnet18",             # ImageNet ResNet with SoftPool substituted
    "poolskip/c100/resnet350",                # PoolSkip shortcut op
    "s3net/c100/k12_d40-vs-densenet",         # S3Net topology vs DenseNet
    "softpool/kernel/cifar-fwdbwd-vs-avg",    # kernel benchmark task
])


def test_one_claim_per_paper_runs_at_smoke_tier(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "suite", "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    run = subprocess.run([*base, "run", "--tier", "smoke", "--claim", CLAIMS, "--jobs", "2",
                          "--no-mlflow", "--no-progress", "--workdir", str(tmp_path / "w")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "error 0" in run.stderr and "timeout 0" in run.stderr, run.stderr[-3000:]
    rep = subprocess.run([*base, "report", "--tier", "smoke", "--claim", CLAIMS, "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    rows = {d["claim"]: d for d in map(json.loads, rep.stdout.splitlines())}
    assert set(rows) == set(CLAIMS.split(","))
    for claim, row in rows.items():
        assert row["verdict"] in ("reproduced", "not reproduced", "inconclusive"), (claim, row)
        assert row["stats"]["summary"]["n"] >= 1, (claim, row)
