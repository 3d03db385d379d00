"""How a claim is measured. Each task is ``run(spec: RunSpec, ctx: TaskContext) -> TaskResult``.

Tasks import ``suite.specs`` (the spec types) and ``registry``; never the rest of ``suite``.
Entries are lazy so validation never imports torch. ``exclusive=True`` marks a task whose
numbers are timings: the scheduler runs it alone on its machine (no other run meanwhile,
every CPU thread), see ``suite/runlock.py``.
"""

from registry._registry import Registry

TASKS = Registry("task")

_R = TASKS.register
_SINGULARITY = ("l2l1_max_shallow", "l2l1_mean_shallow", "l2l1_max", "l2l1_mean",
                "zero_frac_max_shallow", "zero_frac_mean_shallow", "zero_frac_mean",
                "elim_frac_mean_shallow", "elim_frac_mean", "dead_frac_mean_shallow",
                "dead_frac_mean", "n_layers")  # = tasks.singularity.METRICS (a test checks)
_R("train_eval", "tasks.train_eval:run", aliases=("train",),
   help="train a model on a dataset, report top1/top5/loss/throughput/FLOPs (+ the "
        "singularity analysis with params.analyze = ['singularity'])",
   metrics=("top1", "top1_err", "top5", "top5_err", "test_loss", "train_loss", "epochs",
            "wall_s", "images_per_s", "best_top1", "params_m", "gflops_per_image",
            # with params.val_split (a split held out of the training set) / params.objective
            "val_top1", "val_top1_err", "val_loss", "best_val_top1", "objective",
            *_SINGULARITY),  # with params.analyze = ["singularity"]
   # what params.objective / a [claim.sweep] metric may name, and which way is better
   objectives={"val_top1": "maximize", "val_top1_err": "minimize", "val_loss": "minimize"})
_R("singularity", "tasks.singularity:run", aliases=("singularity_analysis",),
   help="per-layer l2/l1 (Hoyer), near-zero weights, eliminated channels and dead units of a "
        "model (params.checkpoint), optionally beside params.compare_model (Sun et al. Fig. 4)",
   metrics=_SINGULARITY, uses=("model",))
_R("throughput", "tasks.throughput:run", aliases=("throughput_probe", "probe"),
   help="images/s of a model's training step (fwd+bwd+SGD) on synthetic input on the device "
        "at hand; feeds `report --cost` estimates",
   metrics=("images_per_s", "step_ms", "gflops_per_image", "params_m"), uses=("model",))
_R("param_count", "tasks.param_count:run", aliases=("params",),
   help="count parameters (and FLOPs) of a model; deterministic, no data",
   metrics=("params", "params_m", "flops", "gflops"), uses=("model",))
_R("kernel_bench", "tasks.kernel_bench:run", aliases=("pool_bench",),
   help="time/memory of every pool vs avg/max pooling on the same tensor (ratios), over a "
        "shape grid and thread counts; metric names depend on params (e.g. "
        "softpool2d.cifar_k2_t2.fwdbwd_ratio_vs_avg, softpool.late.worst_fwdbwd_ratio_vs_avg), "
        "so none listed",
   uses=(), exclusive=True)
_R("info_retention", "tasks.info_retention:run", aliases=("retention",),
   help="downsample images with each pool (k=2,3), upsample back, SSIM/PSNR vs the original "
        "(no training); metric names depend on params (e.g. k2.ssim.softpool_minus_max), "
        "so none listed; the seed picks a shard of the images",
   uses=("dataset",))
_R("loader_bench", "tasks.loader_bench:run",
   help="images/s of the FFCV loader vs a per-item-decoding torch DataLoader vs the "
        "in-memory tensor path (same data, same augmentation), and training throughput "
        "with each; ratios ffcv_vs_torch etc.",
   metrics=("ffcv_ips", "torch_ips", "tensor_ips", "ffcv_vs_torch", "tensor_vs_torch",
            "ffcv_vs_tensor", "train_ffcv_ips", "train_torch_ips", "train_tensor_ips",
            "train_model_only_ips", "train_ffcv_vs_model", "train_torch_vs_model",
            "train_tensor_vs_model", "train_ffcv_vs_torch", "items", "repeats",
            "train_repeats"),
   exclusive=True)

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


def check_params(task: str, params: dict, defaults: dict) -> dict:
    """``defaults`` updated by ``params``; an unknown key is a ``ValueError`` naming it, with
    a did-you-mean and the known keys (a typo in tasks.toml never passes silently)."""
    unknown = set(params) - set(defaults)
    if unknown:
        from registry import did_you_mean

        hints = {k: did_you_mean(k, list(defaults), n=1) for k in unknown}
        msg = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                        for k, h in sorted(hints.items()))
        raise ValueError(f"{task}: unknown params {msg}; known: {', '.join(sorted(defaults))}")
    return {**defaults, **params}


class TaskFailed(RuntimeError):
    """A run that failed for a reason the task understands (divergence, NaN loss, ...).

    The worker records it as an ``error`` row whose message is this exception's text.
    """
