"""CK+ (CK+48, 981 faces, 118 subjects, 7 classes incl. contempt): 10-fold subject-independent CV.

Folds come from scikit-learn's StratifiedGroupKFold over the subject ids, so no person is in the
training and the test part of the same fold (asserted). Two settings train the same architecture
with the same recipe and budget on the nine training folds and test on the held-out fold:

* ``scratch``: random initialisation;
* ``finetune``: initialised from a FER2013-trained affectlens weights file (``--init``) through
  ``model.pretrained``; every backbone tensor is copied and the 7-way FER2013 head is replaced by a
  fresh one, because CK+ has contempt and FER2013 has neutral. The FER model's normalisation is kept.

The architecture is read from the init weights' sidecar, so both settings use it. Nothing is held
out for validation (``val_split: null``): the last epoch's weights are tested. Reported: accuracy per
fold, mean ± std over the 10 folds (sample std), and macro-F1 of the predictions pooled over the
folds; plus, for reference, the FER2013 model applied to CK+ without any CK+ training (6 shared
classes, contempt rows dropped).

    python benchmarks/ckplus_cv.py                      # waits for the init run to finish (--wait)
    python benchmarks/ckplus_cv.py --init runs/fer2013_fast_e40/best.safetensors --allow-unfinished

Runs land in runs/bench-ckplus/<arch>_e<epochs>/<setting>/fold<k>; results in
benchmarks/results/ckplus_cv.{json,md}. Finished folds (summary.json) are reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from affectlens.config_io import load_config
from affectlens.data.dataset import EmotionDataset
from affectlens.data.preprocessing import Normalization
from affectlens.data.registry import load_dataset
from affectlens.evaluation.metrics import classification_metrics
from affectlens.evaluation.runner import evaluate_weights
from affectlens.models.weights import read_card
from affectlens.training.config import TrainConfig
from affectlens.training.data_setup import PreparedData
from affectlens.training.loop import CHECKPOINT, Trainer, new_run_dir

RESULTS = Path(__file__).resolve().parent / "results"
MACHINE = "2-core AMD EPYC CPU, 1 torch thread"
SETTINGS = ("scratch", "finetune")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_folds(dataset: EmotionDataset, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds grouped by subject; checks that no subject crosses train and test."""
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(dataset)), dataset.labels, groups=dataset.subjects))
    assert dataset.subjects is not None
    covered = np.zeros(len(dataset), int)
    for train_idx, test_idx in folds:
        shared = set(dataset.subjects[train_idx]) & set(dataset.subjects[test_idx])
        assert not shared, f"subjects in both train and test: {sorted(shared)}"
        covered[test_idx] += 1
    assert (covered == 1).all(), "every sample must be tested exactly once"
    return folds


def fold_config(args: argparse.Namespace, arch: str, setting: str, fold: int) -> TrainConfig:
    max_lr = args.max_lr if setting == "scratch" else args.finetune_max_lr
    overrides = [
        "data.kind=ckplus", f"data.path={args.data}", "data.train_splits=[train]", "data.val_split=null",
        f"data.test_split=fold{fold}", "data.image_size=48", "data.channels=1", "data.normalization=unit",
        f"augment.crop_size={args.crop}", "augment.rotation=10", "augment.shift=0.1", "augment.erasing=0.25",
        f"model.name={arch}", "optim.name=sgd_nesterov", f"optim.lr={max_lr / 10}", "optim.weight_decay=0.0005",
        "scheduler.name=onecycle", f"scheduler.max_lr={max_lr}", "scheduler.pct_start=0.25",
        "loss.label_smoothing=0.1", f"epochs={args.epochs}", f"batch_size={args.batch_size}",
        f"threads={args.threads}", f"seed={args.seed}", "checkpoint_every_steps=0", "ten_crop=true",
        f"output_dir={args.output_dir}", f"run_name={arch}_e{args.epochs}/{setting}/fold{fold}",
    ]
    if setting == "finetune":
        overrides.append(f"model.pretrained={args.init}")
    return load_config(TrainConfig, None, overrides)


def run_fold(args: argparse.Namespace, dataset: EmotionDataset, arch: str, setting: str, fold: int,
             train_idx: np.ndarray, test_idx: np.ndarray, init_sha: str) -> dict:
    cfg = fold_config(args, arch, setting, fold)
    run_dir = Path(cfg.output_dir) / cfg.run_name
    train, test = dataset.subset(train_idx), dataset.subset(test_idx)
    stamp = {"test_subjects": sorted(set(test.subjects.tolist())), "n_train": len(train), "n_test": len(test),
             "init_sha256": init_sha if setting == "finetune" else None}
    stamp_file = run_dir / "bench_fold.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) != stamp:
        raise SystemExit(f"{run_dir} was made with other folds or other init weights; move it away first")
    if setting == "finetune":
        normalization = Normalization.from_dict(read_card(args.init).normalization)
    else:
        normalization = Normalization.fit(cfg.data.normalization, train.images)
    data = PreparedData(train=train, val=None, test=test, normalization=normalization,
                        class_names=list(dataset.class_names))
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
    else:
        if not run_dir.exists():
            new_run_dir(cfg)  # refuses to overwrite another run
        run_dir.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
        trainer = Trainer(cfg, run_dir, data=data)
        if (run_dir / CHECKPOINT).exists():
            trainer.load_checkpoint()
        elif setting == "finetune":
            # FER2013 and CK+ both have 7 classes, so load_pretrained copied the FER2013 head too (same
            # shape, other classes: CK+ has contempt, FER2013 neutral); give CK+ a fresh head, initialised
            # like the scratch model's head
            trainer.model.head.reset_parameters()
        summary = trainer.fit()
    probs = np.load(run_dir / f"eval_fold{fold}" / "probabilities.npy")
    probs_tc = np.load(run_dir / f"eval_fold{fold}_tencrop" / "probabilities.npy")
    return {"fold": fold, "n_train": len(train), "n_test": len(test), "test_subjects": len(stamp["test_subjects"]),
            "accuracy": summary["test_accuracy"], "macro_f1": summary["test_macro_f1"],
            "accuracy_tencrop": summary.get("test_accuracy_tencrop"), "train_seconds": summary["train_seconds"],
            "run_dir": str(run_dir), "_labels": test.labels, "_probs": probs, "_probs_tc": probs_tc}


def summarise(rows: list[dict], class_names: list[str]) -> dict:
    labels = np.concatenate([r.pop("_labels") for r in rows])
    pooled = classification_metrics(labels, np.concatenate([r.pop("_probs") for r in rows]), class_names)
    pooled_tc = classification_metrics(labels, np.concatenate([r.pop("_probs_tc") for r in rows]), class_names)
    acc = np.array([r["accuracy"] for r in rows])
    acc_tc = np.array([r["accuracy_tencrop"] for r in rows])
    return {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)),
            "accuracy_tencrop_mean": float(acc_tc.mean()), "accuracy_tencrop_std": float(acc_tc.std(ddof=1)),
            "pooled_accuracy": pooled["accuracy"], "pooled_macro_f1": pooled["macro_f1"],
            "pooled_balanced_accuracy": pooled["balanced_accuracy"],
            "pooled_macro_f1_tencrop": pooled_tc["macro_f1"],
            "pooled_per_class_recall": {c["class"]: c["recall"] for c in pooled["per_class"]},
            "pooled_confusion_matrix": pooled["confusion_matrix"],
            "train_seconds_total": float(sum(r["train_seconds"] for r in rows))}


def wait_for_run(init: Path, wait: bool, allow_unfinished: bool) -> float:
    """The init weights are final once their run wrote summary.json; returns the seconds waited."""
    summary = init.parent / "summary.json"
    if summary.exists() or allow_unfinished:
        return 0.0
    if not wait:
        raise SystemExit(f"{init.parent} has no summary.json yet (still training?); use --wait or --allow-unfinished")
    print(f"waiting for {summary} ...", flush=True)
    start = time.time()
    while not summary.exists():
        time.sleep(60)
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/ckplus48")
    parser.add_argument("--init", default="runs/fer2013_vgg_small_e25/best.safetensors",
                        help="FER2013-trained affectlens weights for the fine-tuning setting")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--only-folds", type=int, nargs="*", help="run only these folds (development)")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--crop", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-lr", type=float, default=0.05, help="one-cycle peak lr, from scratch")
    parser.add_argument("--finetune-max-lr", type=float, default=0.01, help="one-cycle peak lr, fine-tuning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default="runs/bench-ckplus")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="run the scratch folds, then wait until the init run has written summary.json")
    parser.add_argument("--allow-unfinished", action="store_true", help="use init weights of an unfinished run")
    args = parser.parse_args()
    command = "python benchmarks/ckplus_cv.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.time()
    init = Path(args.init)
    card = read_card(init)
    arch = card.architecture
    dataset = load_dataset("ckplus", args.data)
    assert dataset.subjects is not None and dataset.images is not None
    class_names = list(dataset.class_names)
    folds = make_folds(dataset, args.folds, args.seed)
    fold_ids = args.only_folds or list(range(1, args.folds + 1))
    results: dict[str, dict] = {}
    init_sha = ""
    waited = 0.0
    for setting in args.settings:
        if setting == "finetune":
            waited = wait_for_run(init, args.wait, args.allow_unfinished)
            init_sha = sha256(init)
        rows = [run_fold(args, dataset, arch, setting, k, *folds[k - 1], init_sha) for k in fold_ids]
        results[setting] = {"folds": rows, "summary": summarise(rows, class_names)}
        s = results[setting]["summary"]
        print(f"{setting}: accuracy {100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f}, "
              f"pooled macro-F1 {s['pooled_macro_f1']:.3f}", flush=True)
    # reference: the FER2013 model on all of CK+ without CK+ training (contempt dropped by align_classes)
    zero_shot = None
    if "finetune" in results:
        zs = evaluate_weights(init, dataset, Path(args.output_dir) / f"{arch}_e{args.epochs}" / "zero_shot",
                              title=f"{init} on CK+ (no CK+ training)")
        zero_shot = {"accuracy": zs["accuracy"], "macro_f1": zs["macro_f1"], "n": zs["n"],
                     "classes": [c["class"] for c in zs["per_class"] if c["support"] > 0],
                     "note": "FER2013 model's classes; CK+ contempt rows dropped, no neutral in CK+48"}
    wall = time.time() - started - waited  # not counting the wait for the init run
    init_summary = init.parent / "summary.json"
    meta = {"benchmark": "ckplus_cv", "command": command.strip(), "machine": MACHINE, "date": date.today().isoformat(),
            "architecture": arch, "epochs": args.epochs, "folds": args.folds, "folds_run": fold_ids,
            "fold_method": f"sklearn StratifiedGroupKFold(n_splits={args.folds}, shuffle=True, "
                           f"random_state={args.seed}) grouped by subject; no subject in train and test",
            "epoch_selection": "none: val_split null, the last epoch's weights are tested",
            "recipe": f"SGD Nesterov (momentum 0.9, wd 5e-4), one-cycle (pct 0.25) to max lr {args.max_lr:g} from "
                      f"scratch / {args.finetune_max_lr:g} fine-tuning, batch {args.batch_size}, label smoothing "
                      f"0.1, random {args.crop}x{args.crop} crop of 48x48, h-flip, affine (rot 10, shift 0.1, scale "
                      "0.8-1.2, p 0.5), erasing 0.25; test: centre crop and ten-crop",
            "init": str(init), "init_sha256": init_sha or None, "init_run_finished": init_summary.exists(),
            "init_card_metrics": {k: card.metrics.get(k) for k in ("epoch", "val_accuracy")},
            "wall_seconds": round(wall), "waited_for_init_seconds": round(waited)}
    if init_summary.exists():
        meta["init_run_summary"] = json.loads(init_summary.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "settings": results, "zero_shot_fer_model": zero_shot}
    (RESULTS / "ckplus_cv.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_markdown(meta, results, zero_shot, class_names, wall)


def write_markdown(meta: dict, results: dict, zero_shot: dict | None, class_names: list[str], wall: float) -> None:
    lines = [
        "# CK+48 subject-independent 10-fold cross-validation", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; date {meta['date']}; {meta['epochs']} epochs per fold; "
        f"wall time of this invocation {wall / 60:.1f} min (incl. evaluation; not counting waiting for the init run "
        "to finish; finished folds are reused, not retrained).", "",
        f"Model: `{meta['architecture']}` (the init weights' architecture) in both settings. "
        f"Folds: {meta['fold_method']}. Epoch selection: {meta['epoch_selection']}. Recipe: {meta['recipe']}. "
        "Mean ± std: over the 10 per-fold accuracies (sample std); macro-F1: of all 981 predictions pooled.  ",
        f"Fine-tuning init: `{meta['init']}` (run finished: {meta['init_run_finished']}); all backbone tensors "
        "copied, the 7-way FER2013 head replaced by a new 7-way CK+ head (CK+ has contempt).", "",
        "| setting | accuracy mean ± std (centre crop) | ten-crop mean ± std | pooled macro-F1 | pooled balanced acc "
        "| train time (all folds) |",
        "|---|---|---|---|---|---|",
    ]
    for setting, block in results.items():
        s = block["summary"]
        lines.append(f"| {setting} | **{100 * s['accuracy_mean']:.1f} ± {100 * s['accuracy_std']:.1f}** | "
                     f"{100 * s['accuracy_tencrop_mean']:.1f} ± {100 * s['accuracy_tencrop_std']:.1f} | "
                     f"**{s['pooled_macro_f1']:.3f}** | {100 * s['pooled_balanced_accuracy']:.1f} | "
                     f"{s['train_seconds_total'] / 60:.1f} min |")
    if zero_shot:
        lines.append(f"| FER2013 model, no CK+ training ({len(zero_shot['classes'])} shared classes, "
                     f"{zero_shot['n']} faces, contempt dropped) | {100 * zero_shot['accuracy']:.1f} "
                     f"(one pass over CK+) | | {zero_shot['macro_f1']:.3f} | | |")
    lines += ["", "Per fold (centre-crop accuracy, %):", "",
              "| setting | " + " | ".join(str(r["fold"]) for r in next(iter(results.values()))["folds"]) + " |",
              "|---|" + "---|" * len(next(iter(results.values()))["folds"])]
    for setting, block in results.items():
        lines.append(f"| {setting} | " + " | ".join(f"{100 * r['accuracy']:.1f}" for r in block["folds"]) + " |")
    lines += ["", "Pooled recall per class:", "", "| setting | " + " | ".join(class_names) + " |",
              "|---|" + "---|" * len(class_names)]
    for setting, block in results.items():
        recall = block["summary"]["pooled_per_class_recall"]
        lines.append(f"| {setting} | " + " | ".join(f"{recall[c]:.2f}" for c in class_names) + " |")
    (RESULTS / "ckplus_cv.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
