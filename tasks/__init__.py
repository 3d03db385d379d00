"""How a claim is measured. Each task is ``run(spec: RunSpec, ctx: TaskContext) -> TaskResult``.

Tasks import ``suite.specs`` (the spec types) and ``registry``; never the rest of ``suite``.
Entries are lazy so validation never imports torch.
"""

from registry._registry import Registry

TASKS = Registry("task")

_R = TASKS.register
_R("train_eval", "tasks.train_eval:run", aliases=("train",),
   help="train a model on a dataset, report top1/top5/loss/throughput",
   metrics=("top1", "top1_err", "top5", "top5_err", "test_loss", "train_loss", "epochs",
            "wall_s", "images_per_s", "best_top1", "params_m"))
_R("param_count", "tasks.param_count:run", aliases=("params",),
   help="count parameters (and FLOPs) of a model; deterministic, no data",
   metrics=("params", "params_m", "flops", "gflops"))


class TaskFailed(RuntimeError):
    """A run that failed for a reason the task understands (divergence, NaN loss, ...).

    The worker records it as an ``error`` row whose message is this exception's text.
    """
