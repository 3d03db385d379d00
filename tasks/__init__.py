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
            "wall_s", "images_per_s", "best_top1", "params_m",
            # with params.val_split (a split held out of the training set) / params.objective
            "val_top1", "val_top1_err", "val_loss", "best_val_top1", "objective"))
_R("param_count", "tasks.param_count:run", aliases=("params",),
   help="count parameters (and FLOPs) of a model; deterministic, no data",
   metrics=("params", "params_m", "flops", "gflops"), uses=("model",))
_R("kernel_bench", "tasks.kernel_bench:run", aliases=("pool_bench",),
   help="time/memory of every pool vs avg/max pooling on the same tensor (ratios); metric "
        "names depend on params (e.g. softpool2d.cifar.fwdbwd_ratio_vs_avg), so none listed",
   uses=())
_R("loader_bench", "tasks.loader_bench:run",
   help="images/s of the FFCV loader vs a per-item-decoding torch DataLoader vs the "
        "in-memory tensor path (same data, same augmentation), and training throughput "
        "with each; ratios ffcv_vs_torch etc.",
   metrics=("ffcv_ips", "torch_ips", "tensor_ips", "ffcv_vs_torch", "tensor_vs_torch",
            "ffcv_vs_tensor", "train_ffcv_ips", "train_torch_ips", "train_tensor_ips",
            "train_model_only_ips", "train_ffcv_vs_model", "train_torch_vs_model",
            "train_tensor_vs_model", "train_ffcv_vs_torch", "items"))

_NTK_DEPTHS = range(2, 17)  # tasks.ntk.METRIC_DEPTHS (kept literal: no torch import here)
_R("ntk_regression", "tasks.ntk:run", aliases=("ntk",),
   help="S3Net Fig. 3: NTK regression test MSE of the residual vs the sparse shortcut "
        "topology at depths K (analytic infinite-width kernels)",
   metrics=tuple(f"{t}_k{k}" for t in ("residual", "sparse", "margin") for k in _NTK_DEPTHS)
   + ("min_margin", "sparse_wins", "n_depths"), uses=("dataset",))

_R("saliency", "tasks.saliency:run", aliases=("fullgrad",),
   help="train a model (as train_eval), then score its FullGrad saliency maps against known "
        "object masks: energy share in the mask, deletion/insertion AUC",
   metrics=("top1", "top1_err", "top5", "top5_err", "test_loss", "train_loss", "epochs",
            "wall_s", "images_per_s", "best_top1", "params_m", "loc_energy", "loc_gain",
            "deletion_auc", "insertion_auc", "completeness_err"))


class TaskFailed(RuntimeError):
    """A run that failed for a reason the task understands (divergence, NaN loss, ...).

    The worker records it as an ``error`` row whose message is this exception's text.
    """
