"""``python -m suite analyze``: analyses of a trained model's checkpoint, outside any claim.

    python -m suite analyze singularity --model cifar_resnet350 --checkpoint r350.pt \\
        --model-arg num_classes=100

``singularity`` measures, per conv/linear layer in network order, Hoyer's l2/l1 sparsity,
the near-zero-weight fraction and the eliminated-channel fraction, plus dead ReLU units on a
fixed batch when ``--dataset`` is given (definitions: :mod:`tasks.singularity`, the same code
``train_eval`` runs with ``params.analyze = ["singularity"]``). The checkpoint is read with
``torch.load(weights_only=True)``: a bare state_dict, or a dict holding one under ``model`` /
``state_dict`` / ``model_state_dict`` (``train_eval``'s own checkpoints included).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suite.errors import SuiteError

EXAMPLES = """
        python -m suite analyze singularity --model cifar_resnet18 --checkpoint r18.pt
        python -m suite analyze singularity --model cifar_resnet350 --checkpoint plain.pt \\
            --model-arg num_classes=100 --compare-model cifar_resnet350_poolskip \\
            --compare-checkpoint ps.pt --out figs/      # Figure-4 style PNG + JSON
        python -m suite analyze singularity --model cifar_resnet_thin --model-arg depth=74 \\
            --model-arg width=0.5 --checkpoint m.pt --dataset fashion_mnist_16   # + dead units
        python -m suite analyze singularity --model test_cnn --json    # at initialisation"""


def _kv(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)  # 100, 0.5, true, "x", [1, 2]
    except json.JSONDecodeError:
        value = raw  # a bare string such as poolskip
    return key.strip(), value


def add_analyze_parser(sub, verb_factory=None) -> argparse.ArgumentParser:
    """Register ``analyze`` (with ``singularity``) on the CLI's subparsers."""
    p = sub.add_parser("analyze", help="analyse a trained model's checkpoint (singularity: "
                                       "per-layer l2/l1, zero weights, dead channels)",
                       description="Analyses of a checkpoint trained anywhere.",
                       epilog="examples:" + EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    asub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    q = asub.add_parser("singularity", help="per-layer l2/l1 (Hoyer), near-zero weights, "
                                            "eliminated channels, dead units (Sun et al. Fig. 4)",
                        description="Per conv/linear layer in network order: Hoyer's l2/l1 "
                                    "sparsity, near-zero weights (|w| < 1% of the layer's rms) "
                                    "and eliminated channels; with --dataset also dead ReLU "
                                    "units on a fixed batch. Definitions: tasks/singularity.py "
                                    "(the code train_eval runs with params.analyze). The "
                                    "checkpoint is read with torch.load(weights_only=True).",
                        epilog="examples:" + EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--model", required=True, help="registry model name (see `ls models`)")
    q.add_argument("--checkpoint", default=None,
                   help="weights file (torch.save of a state_dict); omit to analyse the model "
                        "as initialised")
    q.add_argument("--model-arg", "-m", action="append", type=_kv, default=[],
                   metavar="KEY=VALUE", help="model argument (repeatable), JSON-typed: "
                                             "num_classes=100, width=0.5, skip=poolskip")
    q.add_argument("--compare-model", default=None, help="a second model on the same plot")
    q.add_argument("--compare-checkpoint", default=None, help="its weights")
    q.add_argument("--compare-model-arg", action="append", type=_kv, default=[],
                   metavar="KEY=VALUE", help="its model arguments on top of --model-arg")
    q.add_argument("--dataset", default=None,
                   help="a registry dataset: its first --batch test images measure dead units")
    q.add_argument("--dataset-arg", "-a", action="append", type=_kv, default=[],
                   metavar="KEY=VALUE", help="dataset argument (repeatable)")
    q.add_argument("--batch", type=int, default=256, help="held-out images (default 256)")
    q.add_argument("--out", default=None, metavar="DIR",
                   help="write singularity.json and singularity.png into DIR")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def singularity(args) -> dict[str, Any]:
    """Run the analysis the flags describe; returns {metrics, series, layers[, compare]}."""
    import registry
    from registry import UnknownNameError
    from tasks import singularity as sg

    margs = dict(args.model_arg)
    batch = None
    try:
        if args.dataset:
            bundle = registry.create_dataset(args.dataset, **dict(args.dataset_arg))
            margs = {"num_classes": bundle.num_classes, "in_chans": bundle.in_chans, **margs}
            batch = sg.held_out_batch(bundle, args.batch)
        model = sg.load_model(args.model, args.checkpoint, margs)
        report = sg.analyze(model, batch)
        compare = {}
        if args.compare_model:
            cargs = {**margs, **dict(args.compare_model_arg)}
            other = sg.load_model(args.compare_model, args.compare_checkpoint, cargs)
            compare[args.compare_model] = sg.analyze(other, batch)
    except UnknownNameError as e:
        raise SuiteError(str(e)) from None
    except (ValueError, TypeError) as e:
        raise SuiteError(f"analyze singularity: {e}") from None
    out: dict[str, Any] = {"model": args.model, "checkpoint": args.checkpoint,
                           "model_args": margs, "metrics": report.metrics(),
                           "series": report.series(), "layers": report.table()}
    for name, rep in compare.items():
        out["compare"] = {"model": name, "checkpoint": args.compare_checkpoint,
                          "metrics": rep.metrics(), "series": rep.series(),
                          "layers": rep.table()}
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        label = args.model + (f" ({Path(args.checkpoint).name})" if args.checkpoint else "")
        png = sg.plot({label: report, **compare}, title=args.model)
        tmp = d / "singularity.json.tmp"
        tmp.write_text(json.dumps(out, indent=1, default=str))
        tmp.replace(d / "singularity.json")
        if png is not None:
            (d / "singularity.png").write_bytes(png)
        out["written"] = [str(d / "singularity.json")] + (
            [str(d / "singularity.png")] if png is not None else [])
    return out


def cmd_analyze(args) -> int:
    from rich.table import Table

    from suite.ui import out

    result = singularity(args)
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    t = Table(title=f"singularity analysis: {args.model}"
                    + (f" ← {args.checkpoint}" if args.checkpoint else " (as initialised)"))
    for h in ("#", "layer", "shape", "l2/l1 (Hoyer)", "near-zero %", "elim. channels %"):
        t.add_column(h, justify="left" if h in ("layer", "shape") else "right")
    for row in result["layers"]:
        if row["in_skip_op"]:
            continue
        t.add_row(str(row["index"]), row["name"], "×".join(map(str, row["shape"])),
                  f"{row['l2l1']:.3f}", f"{100 * row['zero_frac']:.2f}",
                  f"{100 * row['elim_frac']:.1f}")
    out.print(t)
    m = result["metrics"]
    out.print("summary: " + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(m.items())))
    if "compare" in result:
        cm = result["compare"]["metrics"]
        out.print(f"compare ({result['compare']['model']}): "
                  + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(cm.items())))
    for path in result.get("written", []):
        out.print(f"wrote {path}")
    return 0
