"""A results database for the dashboard tests, written by the suite's own writer
(:func:`suite.db.record_runs`) from a small claims file: ok, error, skipped and delta runs,
a pending claim, a kernel benchmark, a parameter count tied to a published row, an earlier
run whose recipe has since changed, per-epoch series, a PNG and JSON artifacts.

Verdicts at the mini tier (what the tests assert):

=================================  ===============
demo/abs-ok                        reproduced
demo/delta                         reproduced (Δ ≈ +3.2 vs min_diff 1)
demo/error                         error
demo/skipped                       skipped
demo/pending                       pending
demo/kernel                        inconclusive (two seeds: a wide interval)
allconv/params/model_a             not reproduced (0.8392 M vs 0.9 ± 0.05 M)
=================================  ===============
"""

from __future__ import annotations

import io
from pathlib import Path

from suite import db
from suite.claims import load_claims
from suite.plan import plan_claim
from suite.specs import blob

TASKS = """
[papers.demo]
title = "Demo paper of the dashboard tests"
venue = "nowhere"

[papers.allconv]
title = "Striving for Simplicity: The All Convolutional Net"
arxiv = "1412.6806"

[defaults]
task = "train_eval"
seeds = [0, 1, 2]

[[claim]]
id = "demo/abs-ok"
paper = "demo"
source = "fixture: an absolute claim with three ok seeds"
title = "A micro CNN reaches 30% top-1"
tags = ["accuracy"]
model = "test_cnn"
dataset = "fashion_mnist_32"
dataset_args = { train_subset = 1000 }
params = { epochs = 10 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 30.0, unit = "%" }
published = { value = 30.0, unit = "%" }
[claim.tiers.mini]
dataset_args = { train_subset = 500 }
params = { epochs = 2 }

[[claim]]
id = "demo/delta"
paper = "demo"
source = "fixture: a delta claim, paired by seed"
title = "SoftPool beats max pooling by a point"
tags = ["accuracy", "pooling"]
model = "test_cnn"
dataset = "synthetic"
model_args = { pool = "softpool" }
expect = { kind = "delta", metric = "top1", direction = "higher", min_diff = 1.0, baseline = { model_args = { pool = "max" } } }
published = { value = 2.0, unit = "pp" }
tiers = { mini = { params = { epochs = 2 } } }

[[claim]]
id = "demo/error"
paper = "demo"
source = "fixture: every run fails"
title = "A claim whose runs crash"
model = "test_cnn"
dataset = "synthetic"
params = { lr = 10.0 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 30.0 }
tiers = { mini = {} }

[[claim]]
id = "demo/skipped"
paper = "demo"
source = "fixture: data missing"
title = "A claim whose data is missing"
model = "test_cnn"
dataset = "cifar10"
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 30.0 }
tiers = { mini = {} }

[[claim]]
id = "demo/pending"
paper = "demo"
source = "fixture: never run"
title = "A claim nobody ran"
model = "test_cnn"
dataset = "synthetic"
params = { epochs = 7 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 30.0 }
tiers = { mini = {} }

[[claim]]
id = "demo/kernel"
paper = "demo"
source = "fixture: a pooling benchmark"
title = "SoftPool costs at most 1.3x avg pooling"
tags = ["bench"]
task = "kernel_bench"
params = { shapes = ["cifar"] }
seeds = [0, 1]
expect = { kind = "absolute", metric = "softpool2d.cifar.fwdbwd_ratio_vs_avg", direction = "lower", value = 1.3 }
tiers = { mini = {} }

[[claim]]
id = "allconv/params/model_a"
paper = "allconv"
source = "Table 3 (CIFAR-10), row Model A: 0.9M parameters"
title = "Model A has 0.9M parameters"
task = "param_count"
model = "allcnn_model_a"
dataset = "cifar10"
model_args = { num_classes = 10 }
seeds = [0]
min_runs = 1
expect = { kind = "absolute", metric = "params_m", direction = "equal", value = 0.9, tolerance = 0.05, unit = "M" }
published = { value = 0.9, unit = "M", ref = "allconv/table-3/cifar-10/model-a/params" }
tiers = { mini = {} }
"""

#: The verdict of every fixture claim at the mini tier.
VERDICTS = {"demo/abs-ok": "reproduced", "demo/delta": "reproduced", "demo/error": "error",
            "demo/skipped": "skipped", "demo/pending": "pending",
            "demo/kernel": "inconclusive", "allconv/params/model_a": "not reproduced"}

PROV = {"git_sha": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
        "python": "3.11.7", "torch": "2.14.1", "device": "cpu", "device_name": "CPU test"}


def png(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    from PIL import Image

    im = Image.new("RGB", (32, 32), color)
    for i in range(32):
        im.putpixel((i, i), (255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _result(spec, status="ok", metrics=None, series=None, artifacts=None, message="",
            wall_s=10.0, seed_offset=0):
    return {"spec": spec.to_dict(), "status": status, "message": message,
            "metrics": metrics or {}, "series": series or {}, "artifacts": artifacts or {},
            "provenance": PROV, "wall_s": wall_s + seed_offset,
            "started_at": f"2026-01-0{1 + spec.seed}T10:00:00",
            "finished_at": f"2026-01-0{1 + spec.seed}T10:01:00",
            "mlflow_run_id": f"mlflow{spec.run_key[:8]}"}


def results(claims) -> list[dict]:
    by = {c.id: c for c in claims}
    out = []
    top1 = {0: 41.0, 1: 43.5, 2: 42.2}
    for s in plan_claim(by["demo/abs-ok"], "mini").runs:
        arts = {"saliency": blob(png()), "per_layer": [{"layer": "conv1", "l2_l1": 0.12},
                                                       {"layer": "conv2", "l2_l1": 0.31}]}
        out.append(_result(s, metrics={"top1": top1[s.seed], "top1_err": 100 - top1[s.seed],
                                       "images_per_s": 100.0},
                           series={"test_top1": [20.0, 35.0, top1[s.seed]],
                                   "train_loss": [2.0, 1.2, 0.9]},
                           artifacts=arts if s.seed == 0 else None, seed_offset=s.seed))
    # an earlier run of demo/abs-ok whose recipe has since changed (another run key)
    old = plan_claim(by["demo/abs-ok"], "mini").runs[0]
    stale = old.to_dict()
    stale["params"] = {"epochs": 1}
    stale["run_key"] = "stale0000000000000000"
    out.append({**_result(old, metrics={"top1": 12.0}), "spec": stale})
    vals = {"treatment": {0: 50.0, 1: 52.0, 2: 51.0}, "baseline": {0: 47.0, 1: 48.5, 2: 48.0}}
    for s in plan_claim(by["demo/delta"], "mini").runs:
        v = vals[s.arm][s.seed]
        out.append(_result(s, metrics={"top1": v}, series={"test_top1": [30.0, v]}))
    # a sweep trial recorded under demo/delta (arm "sweep"): shown apart, never judged
    trial = plan_claim(by["demo/delta"], "mini").runs[0].to_dict()
    trial.update(arm="sweep", params={"epochs": 2, "lr": 0.03}, run_key="trial000000000000000")
    out.append({**_result(plan_claim(by["demo/delta"], "mini").runs[0], metrics={"top1": 5.0}),
                "spec": trial})
    for s in plan_claim(by["demo/error"], "mini").runs:
        out.append(_result(s, "error", message="NaN loss at epoch 2 (lr 10.0 too high)",
                           wall_s=3.0))
    for s in plan_claim(by["demo/skipped"], "mini").runs:
        out.append(_result(s, "skipped", message="dataset unavailable: CIFAR data not found",
                           wall_s=0.5))
    ratio = {0: 0.95, 1: 1.05}
    for s in plan_claim(by["demo/kernel"], "mini").runs:
        m = {"softpool2d.cifar.fwdbwd_ratio_vs_avg": ratio[s.seed],
             "avg2d.cifar.fwdbwd_ratio_vs_avg": 1.0,
             "max2d.cifar.fwdbwd_ratio_vs_avg": 0.9 + 0.01 * s.seed,
             "softpool2d.cifar.fwd_ms": 2.0, "cuda_copy_gbps": 0.0}
        rows = [{"shape": "cifar", "pool": "softpool2d", "fwd": 2.0, "fwdbwd": 5.0, "mem": 1.0},
                {"shape": "cifar", "pool": "avg2d", "fwd": 1.9, "fwdbwd": 5.1, "mem": 1.0}]
        out.append(_result(s, metrics=m, artifacts={"rows": rows}))
    for s in plan_claim(by["allconv/params/model_a"], "mini").runs:
        out.append(_result(s, metrics={"params_m": 0.8392, "params": 839_200.0,
                                       "gflops": 0.25}))
    return out


def build(directory: Path, url: str | None = None) -> tuple[str, Path]:
    """Write tasks.toml and the results DB (``url``, by default results.db) into
    ``directory``; return (db URL, tasks path)."""
    directory.mkdir(parents=True, exist_ok=True)
    tasks = directory / "tasks.toml"
    tasks.write_text(TASKS, encoding="utf-8")
    _, claims = load_claims(tasks)
    url = url or f"sqlite:///{directory / 'results.db'}"
    engine = db.connect(url)
    db.record_claims(engine, claims)
    db.record_runs(engine, results(claims))
    engine.dispose()
    return url, tasks


def build_optuna(path: Path) -> str:
    """A real Optuna RDB storage with one study per arm of demo/delta."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    for arm, shift in (("treatment", 0.0), ("baseline", -2.0)):
        study = optuna.create_study(study_name=f"demo/delta:{arm}", storage=url,
                                    direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.set_user_attr("claim_id", "demo/delta")
        study.set_user_attr("arm", arm)
        study.optimize(lambda t, s=shift: 50 + s - 100 * (t.suggest_float(
            "lr", 1e-3, 1.0, log=True) - 0.1) ** 2 + t.suggest_int("width", 1, 4), n_trials=6)
    return url
