"""Mirror each recorded run to MLflow: params, per-epoch metrics, final metrics, tags.

The tracking store is ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` beside the results
DB. One MLflow experiment per paper (``poolrepro/<paper>``); each run is tagged with its
``run_key``, claim id, tier, arm and status, and its MLflow id is kept on the results row.
MLflow is optional (``pip install poolrepro[tracking]``); without it, or with
``--no-mlflow``, nothing is mirrored.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

DEFAULT_URI = "sqlite:///mlflow.db"
_lock = threading.Lock()


class Mirror:
    def __init__(self, uri: str | None = None):
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
        self.client = MlflowClient(tracking_uri=self.uri)
        self._mlflow = mlflow
        self._experiments: dict[str, str] = {}

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            exp = self.client.get_experiment_by_name(name)
            self._experiments[name] = exp.experiment_id if exp else \
                self.client.create_experiment(name)
        return self._experiments[name]

    def log(self, result: dict[str, Any], paper: str = "") -> str:
        """Create one MLflow run for a RESULT dict; returns its run id."""
        from mlflow.entities import Metric, Param, RunTag

        spec = result["spec"]
        with _lock:  # MLflow's SQL store is not safe under concurrent schema checks
            exp = self._experiment(f"poolrepro/{paper or spec['claim_id'].split('/')[0]}")
            tags = {"run_key": spec["run_key"], "claim_id": spec["claim_id"],
                    "tier": spec["tier"], "arm": spec["arm"], "status": result["status"],
                    "mlflow.runName": f"{spec['claim_id']}:{spec['arm']}:s{spec['seed']}"}
            run = self.client.create_run(exp, tags=tags)
            rid = run.info.run_id
            flat = _flatten({k: spec[k] for k in ("task", "model", "dataset", "model_args",
                                                  "dataset_args", "params", "seed")})
            params = [Param(k, str(v)[:6000]) for k, v in flat.items()]
            metrics = [Metric(k, float(v), 0, 0) for k, v in result.get("metrics", {}).items()
                       if _is_num(v)]
            for name, values in (result.get("series") or {}).items():
                metrics += [Metric(f"epoch/{name}", float(v), 0, i)
                            for i, v in enumerate(values) if _is_num(v)]
            prov = result.get("provenance") or {}
            ptags = [RunTag(f"prov.{k}", str(v)[:5000]) for k, v in prov.items()
                     if isinstance(v, (str, int, float, bool))]
            # MLflow caps a batch at 1000 metrics and 100 params / tags
            for i in range(0, len(metrics), 900):
                self.client.log_batch(rid, metrics=metrics[i:i + 900])
            for i in range(0, len(params), 90):
                self.client.log_batch(rid, params=params[i:i + 90])
            for i in range(0, len(ptags), 90):
                self.client.log_batch(rid, tags=ptags[i:i + 90])
            status = "FINISHED" if result["status"] == "ok" else "FAILED"
            self.client.set_terminated(rid, status=status)
        return rid


def _is_num(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and abs(f) != float("inf")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def make_mirror(enabled: bool, uri: str | None = None) -> Mirror | None:
    if not enabled:
        return None
    try:
        return Mirror(uri)
    except ImportError:
        return None
