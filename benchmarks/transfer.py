"""Transfer learning, measured: a small scene-labeling training set, pretrained backbone vs random init.

Every arm trains the scene-labeling model on the same ``--n-train`` generator
scenes (32 by default) for the same number of epochs, batch size and learning
rate, and is scored on the same held-out generator scenes on ONNX Runtime.
Only the encoder's starting point and its fine-tuning mode differ:

* random init, full training (the encoder learns at the full learning rate);
* pretrained (``apptool pretrain``), full fine-tuning;
* pretrained, gradual unfreezing (head only until ``unfreeze_epoch``, then the
  encoder at ``backbone_lr_mult`` times the learning rate);
* pretrained, frozen features (head only).

Run from the repository root::

    python benchmarks/transfer.py                        # pretrains resnet10t (quick) first if needed
    python benchmarks/transfer.py --pretrained BUNDLE    # a backbone bundle from `apptool pretrain`

It prints the table, and writes it with every arm's bundle under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

ARMS = {  # name -> (pretrained?, train overrides)
    "random-full": (False, {"finetune": "full", "backbone_lr_mult": 1.0}),
    "pretrained-full": (True, {"finetune": "full", "backbone_lr_mult": 1.0}),
    "pretrained-gradual": (True, {"finetune": "gradual", "backbone_lr_mult": 0.3}),
    "pretrained-frozen": (True, {"finetune": "frozen"}),
}


def ensure_backbone(backbone: str, pretrained: Path | None, seed: int, console: Console) -> Path:
    """The backbone bundle to start from: the one given, a cached one, or a fresh `apptool pretrain` (quick)."""
    from apptool.pretrain import pretrain

    if pretrained is not None:
        return pretrained
    cached = Path("artifacts") / "pretrained" / f"{backbone}-quick"
    if (cached / "config.json").is_file():
        console.print(f"using the pretrained backbone in {cached}")
        return cached
    console.print(f"pretraining {backbone} (preset quick) into {cached} ...")
    return pretrain(backbone, cached, preset="quick", seed=seed)


def _same_run(bundle_dir: Path, config: dict) -> bool:
    """Whether ``bundle_dir`` holds a finished run of exactly this config (model, data, train, seed)."""
    path = bundle_dir / "config.json"
    if not path.is_file() or not (bundle_dir / "metrics.json").is_file():
        return False
    done = json.loads(path.read_text())
    return all(done.get(key) == config[key] for key in ("model", "data", "train", "seed"))


def run_arm(name: str, backbone: str, bundle: Path | None, args, out: Path, console: Console) -> dict:
    from apptool.engine import train
    from apptool.plugins import get_plugins

    use_pretrained, train_overrides = ARMS[name]
    task = get_plugins().task("scene_labeling")
    overrides = {
        "seed": args.seed,
        "model": {"backbone": backbone, "pretrained": str(bundle) if use_pretrained else None},
        "data": {"n_train": args.n_train, "n_test": args.n_test},
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "val_fraction": 0.0,
            "patience": 0,
            "warmup_epochs": 1,
            "unfreeze_epoch": max(1, args.epochs // 4),
            **train_overrides,
        },
    }
    config = task.config("quick", overrides)
    bundle_dir = out / name
    if not args.rerun and _same_run(bundle_dir, config):
        console.print(f"{name}: reusing the finished run in {bundle_dir} (same settings; --rerun to train again)")
    else:
        train(task, config, bundle_dir, progress=not args.quiet)
    metrics = json.loads((bundle_dir / "metrics.json").read_text())
    test, seconds = metrics["test"], metrics["training"]["seconds"]
    return {
        "arm": name,
        "pretrained": str(bundle) if use_pretrained else "random init",
        **train_overrides,
        "miou": test["miou"],
        "pixel_acc": test["pixel_acc"],
        "class_acc": test["class_acc"],
        "per_class_iou": test["per_class_iou"],
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--pretrained", type=Path, default=None, help="backbone bundle (default: pretrain one)")
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--out", type=Path, default=Path("artifacts") / "transfer")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--rerun", action="store_true", help="train every arm again even if --out holds its finished run")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 110))
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    bundle = ensure_backbone(args.backbone, args.pretrained, args.seed, console) if any(ARMS[a][0] for a in arms) else None
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run_arm(name, args.backbone, bundle, args, args.out, console) for name in arms]

    table = Table(
        title=f"scene labeling, {args.n_train} training images, {args.epochs} epochs, "
        f"{args.n_test} held-out scenes ({args.backbone})"
    )
    for column in ("encoder start", "fine-tuning", "mIoU", "pixel acc", "class acc", "train s"):
        table.add_column(column, no_wrap=True)
    for r in results:
        mode = r["finetune"] + (f", encoder lr x{r['backbone_lr_mult']:g}" if r["finetune"] != "frozen" else ", head only")
        table.add_row(
            "pretrained" if r["pretrained"] != "random init" else "random init",
            mode,
            f"{r['miou']:.3f}",
            f"{r['pixel_acc']:.3f}",
            f"{r['class_acc']:.3f}",
            f"{r['seconds']:.0f}",
        )
    console.print(table)
    by_arm = {r["arm"]: r for r in results}
    if "random-full" in by_arm and "pretrained-full" in by_arm:
        random_, pretrained_ = by_arm["random-full"]["miou"], by_arm["pretrained-full"]["miou"]
        console.print(f"mIoU  random init {random_:.3f}  |  pretrained {pretrained_:.3f}  ({pretrained_ - random_:+.3f})")
    report = {
        "backbone": args.backbone,
        "pretrained_bundle": str(bundle) if bundle else None,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "results": results,
    }
    (args.out / "transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
