"""Ship a trained run as a packaged model, or re-measure the models already shipped.

This is the one script that writes a shipped model's card and its entry in
affectlens/weights/pretrained.json. Every number in them is measured here on the shipped weights:

- FER2013 PublicTest (validation) and PrivateTest (test), centre crop and ten-crop, accuracy and
  macro-F1 (``PrivateTest_accuracy``, ...); a model with other classes is scored with its classes
  mapped by name;
- for a model trained on another dataset (FER+), the same on that dataset's splits, prefixed with
  its name (``ferplus_PrivateTest_accuracy``, ...);
- accuracy on a fixed slice (the first 300 rows of the model's own test split), unrounded, which
  tests/test_shipped_models.py recomputes to catch changed weights or preprocessing;
- CK+ cross-dataset accuracy and macro-F1 where CK+ classes map onto the model's (a note names the
  CK+ classes dropped, only when some were);
- parameters and multiply-adds;
- the calibration: a temperature fitted on the model's own validation split (PublicTest of the data
  it was trained on, raw probabilities), stored in the card's ``calibration`` with the expected
  calibration error (15 bins) on its own test split before and after (``PrivateTest_ece``, or
  ``ferplus_PrivateTest_ece``, is the calibrated one). ``--calibrate-only`` does just this step for
  shipped models (a temperature never changes which class wins, so the other numbers stand).

Throughput is not a property of the weights but of the machine and its load: it is measured with
the load average by benchmarks/model_table.py and lives in BENCHMARKS.md only.

    # ship a run: copy its weights, export the ONNX graph, measure, write card and table entry
    python tools/ship_model.py runs/fer2013_vgg_small_e25 --tag fer2013 --alias default \\
        --file-stem fer2013_vgg_small
    # re-measure shipped models from their own weights (no training, weight files untouched)
    python tools/ship_model.py --rewrite-card-only                 # every model in the table
    python tools/ship_model.py --rewrite-card-only default fast    # some of them
    # adopt weights already in affectlens/weights/ into the table
    python tools/ship_model.py --rewrite-card-only affectlens/weights/fer2013_fast_cnn.safetensors --alias fast
    # ship an ensemble of shipped models by reference: a card naming them, no weights of its own
    python tools/ship_model.py --ensemble default fast --member-weights 1 1 --alias ensemble \
        --file-stem fer2013_ensemble          # --mirror: members also see the mirrored face
    # a single model that answers for the face and its mirror image (the card's ``mirror``), measured so
    python tools/ship_model.py --rewrite-card-only fast --mirror
    # fit and store the temperature of shipped models (and their test ECE), nothing else re-measured
    python tools/ship_model.py --calibrate-only default fast

An ensemble (architecture ``ensemble``, :mod:`affectlens.runtime.ensemble_card`) is measured like any
model, through its members; its ``params`` and ``multiply_adds`` are the members' sums. Re-measure
it (``--rewrite-card-only ensemble``) whenever one of its members is shipped again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

from affectlens import __version__
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import align_classes, evaluate_weights
from affectlens.inference.export import export_onnx
from affectlens.models.complexity import count_macs, count_params
from affectlens.models.weights import load_weights
from affectlens.runtime.card import ModelCard, class_frequencies, read_card, sidecar_path
from affectlens.runtime.card import write_card as write_card_file
from affectlens.runtime.ensemble_card import (
    is_ensemble_card,
    load_ensemble,
    mean_class_prior,
    write_ensemble_card,
)
from affectlens.runtime.pretrained import (
    STANDARD_ALIASES,
    TABLE_FILE,
    TABLE_FORMAT,
    WEIGHTS_DIR,
    file_sha256,
    find_shipped,
    main_file_kind,
    pretrained_entry,
    read_table,
)

MAX_BYTES = 30 * 1024 * 1024
#: the benchmark every shipped emotion model is scored on, with its validation and test splits
BENCHMARK = "fer2013"
SPLITS = ("PublicTest", "PrivateTest")
#: the fixed slice tests/test_shipped_models.py recomputes: the first rows of the test split
SLICE_ROWS = 300
#: ``extra`` keys this script writes; every other ``extra`` key (training provenance, the ONNX
#: export's record, valence/arousal flags) is kept as it is
WRITTEN_EXTRA = ("measured", "machine", "ckplus_note", "metrics_note", "slice_check")


def trained_on(card: ModelCard) -> str:
    """The dataset kind a model was trained on: the first word of its card's ``training_data``."""
    words = card.training_data.split()
    if not words:
        raise AffectlensError(f"card of {card.architecture} names no training data; cannot tell what to measure")
    return words[0]


def training_prior(weights: Path, card: ModelCard, data_root: Path) -> list[float]:
    """The class frequencies of the data a card says its model was trained on (``fer2013 (Training;
    28709 images)``), for cards written before training recorded them; an ensemble's are its members'."""
    if is_ensemble_card(weights):
        ensemble = load_ensemble(weights)
        prior = mean_class_prior([m.card for m in ensemble.members], ensemble.weights)
        if not prior:
            raise AffectlensError(f"{weights.name}: a member's card has no class_prior; re-ship the members first")
        return prior
    match = re.match(r"(\w+) \(([^;]+); (\d+) images\)", card.training_data)
    if match is None:
        raise AffectlensError(f"{weights.name}: cannot read the training data of '{card.training_data}'")
    kind, splits, images = match.group(1), match.group(2).split(", "), int(match.group(3))
    data = align_classes(load_dataset(kind, data_root / kind).select_splits(splits), card.class_names)
    if len(data) != images:
        raise AffectlensError(f"{weights.name}: {kind} {splits} holds {len(data)} images, the card says {images}")
    return class_frequencies(data.label_mass(soft="label mode soft" in card.training_data))


def score(weights: Path, dataset, reports: Path, key: str, ten_crop: bool = False) -> tuple[dict, list[str]]:
    """Evaluate and return the metrics with the dataset classes that had no model class (dropped)."""
    out = reports / key
    metrics = evaluate_weights(weights, dataset, out, ten_crop=ten_crop)
    dropped = json.loads((out / "evaluation.json").read_text())["dropped_classes"]
    return metrics, dropped


def measure(weights: Path, card: ModelCard, data_root: Path, reports: Path) -> tuple[dict, dict]:
    """Every metric of the card, and the ``extra`` notes that explain them."""
    metrics: dict = {}
    notes: dict = {}
    own = trained_on(card)
    datasets = {BENCHMARK: ""} | ({own: f"{own}_"} if own != BENCHMARK else {})
    for kind, prefix in datasets.items():
        data = load_dataset(kind, data_root / kind)
        for split in SPLITS:
            for ten_crop in (False, True):
                key = f"{prefix}{split}{'_tencrop' if ten_crop else ''}"
                result, _ = score(weights, data.select_splits(split), reports, key, ten_crop)
                metrics[f"{key}_accuracy"] = round(result["accuracy"], 4)
                metrics[f"{key}_macro_f1"] = round(result["macro_f1"], 4)
                print(f"  {key}: accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}", flush=True)
    if own != BENCHMARK:
        notes["metrics_note"] = (f"{own}_* keys: {own} labels on its own splits; the other split keys use "
                                 f"{BENCHMARK} labels with the classes mapped by name")
    split = SPLITS[-1]
    key = f"{datasets[own]}{split}_slice{SLICE_ROWS}_accuracy"
    rows = load_dataset(own, data_root / own).select_splits(split).subset(np.arange(SLICE_ROWS))
    metrics[key] = score(weights, rows, reports, key)[0]["accuracy"]  # unrounded: the test compares to 1e-9
    notes["slice_check"] = {"data": own, "split": split, "rows": SLICE_ROWS, "metric": key}
    try:
        result, dropped = score(weights, load_dataset("ckplus", data_root / "ckplus48"), reports, "ckplus")
    except AffectlensError as exc:  # no CK+ class maps onto the model's classes
        print(f"  CK+ skipped: {exc}")
    else:
        metrics["ckplus_cross_dataset_accuracy"] = round(result["accuracy"], 4)
        metrics["ckplus_cross_dataset_macro_f1"] = round(result["macro_f1"], 4)
        if dropped:
            notes["ckplus_note"] = (f"CK+ classes mapped by name; {', '.join(dropped)} (not a class of this model) "
                                    "dropped")
        print(f"  CK+: accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, dropped {dropped}")
    metrics |= model_size(weights)
    notes["measured"] = date.today().isoformat()
    notes["machine"] = f"{platform.machine()} {os.cpu_count()} cores"
    return metrics, notes


def calibrate(weights: Path, card: ModelCard, data_root: Path, reports: Path) -> tuple[dict, dict]:
    """Fit the calibration (temperature, then a confidence map where cross-validation says it helps) on the
    model's own validation split; its test ECE before and after.

    Writes the card's ``calibration`` first (later measurements read the card from disk) and
    returns it with the metric keys to merge into the card's metrics.
    """
    from affectlens.evaluation.calibration import calibrate_with_record, fit_from_report
    from affectlens.runtime.calibration import expected_calibration_error

    own = trained_on(card)
    data = load_dataset(own, data_root / own)
    validation, test = SPLITS
    evaluate_weights(weights, data.select_splits(validation), reports / "fit", calibrate=False)
    record = fit_from_report(reports / "fit", f"{own} {validation}")
    evaluate_weights(weights, data.select_splits(test), reports / "test", calibrate=False)
    probs, labels = np.load(reports / "test" / "probabilities.npy"), np.load(reports / "test" / "labels.npy")
    record["test_ece_before"] = round(expected_calibration_error(labels, probs), 4)
    calibrated = calibrate_with_record(probs, record)
    record["test_ece_after"] = round(expected_calibration_error(labels, calibrated), 4)
    record["test_split"] = f"{own} {test}"
    card.calibration = record
    write_card_file(card, weights)
    prefix = "" if own == BENCHMARK else f"{own}_"
    mapped = " + a top-label confidence map" if "confidence_map" in record else ""
    print(f"  temperature {record['temperature']:g}{mapped} (fitted on {record['fitted_on']}); "
          f"{record['test_split']} ECE {record['test_ece_before']:.4f} -> {record['test_ece_after']:.4f}", flush=True)
    return record, {f"{prefix}{test}_ece": record["test_ece_after"]}


def model_size(weights: Path) -> dict[str, int]:
    """Parameters and multiply-adds per face (centre crop); an ensemble's are its members' sums."""
    paths = [m.path for m in load_ensemble(weights).members] if is_ensemble_card(weights) else [weights]
    size = {"params": 0, "multiply_adds": 0}
    for path in paths:
        model, card = load_weights(path)
        size["params"] += count_params(model)
        size["multiply_adds"] += count_macs(model, card.input_size, card.in_channels)
    return size


def write_card(weights: Path, card: ModelCard, metrics: dict, notes: dict) -> None:
    card.metrics = metrics
    card.extra = {**{k: v for k, v in card.extra.items() if k not in WRITTEN_EXTRA}, **notes}
    write_card_file(card, weights)


def table_entry(weights: Path, card: ModelCard, tag: str, aliases: list[str]) -> tuple[str, dict]:
    """The table row of a shipped model, copied from its (just written) card and files.

    An ensemble's row has its card as its only file and names its members as table entries.
    """
    ensemble = is_ensemble_card(weights)
    files = ({"card": weights.name} if ensemble else
             {"weights": weights.name, "onnx": weights.with_suffix(".onnx").name, "card": sidecar_path(weights).name})
    entry: dict = {
        "architecture": card.architecture, "tag": tag, "aliases": aliases, "description": card.description,
        "task": card.task, "class_names": card.class_names, "in_channels": card.in_channels,
        "image_size": card.image_size, "input_size": card.input_size, "normalization": card.normalization,
        "training_data": card.training_data, "licence": card.licence, "files": files,
        "sha256": {kind: file_sha256(weights.parent / name) for kind, name in files.items()},
        "metrics": card.metrics, "slice_check": card.extra["slice_check"],
    }
    if card.mirror:
        entry["mirror"] = True
    if ensemble:
        members = load_ensemble(weights)
        entry |= {"members": [find_shipped(m.spec) for m in members.members],
                  "member_weights": [m.weight for m in members.members], "combination": members.combination}
    return f"{card.architecture}.{tag}", entry


def update_table(name: str, entry: dict) -> None:
    """Insert or replace ``name`` (keeping its aliases); its aliases leave any other entry that held them."""
    table = json.loads(TABLE_FILE.read_text())["models"] if TABLE_FILE.exists() else {}
    entry["aliases"] = sorted({*table.get(name, {}).get("aliases", []), *entry["aliases"]})
    for other in table.values():
        other["aliases"] = [a for a in other.get("aliases", []) if a not in entry["aliases"]]
    table[name] = entry

    def rank(item: tuple[str, dict]) -> tuple[int, str]:  # default, fast, then the rest by name
        held = [STANDARD_ALIASES.index(a) for a in item[1]["aliases"] if a in STANDARD_ALIASES]
        return min(held, default=len(STANDARD_ALIASES)), item[0]

    table = dict(sorted(table.items(), key=rank))
    TABLE_FILE.write_text(json.dumps({"format": TABLE_FORMAT, "models": table}, indent=2) + "\n")


def epoch_seconds(run_dir: Path) -> float | None:
    """Training wall time summed over every epoch the run logged.

    A resumed run's ``summary.json`` counts only its last sitting; the per-epoch log covers all.
    """
    log = run_dir / "metrics.json"
    if not log.exists():
        return None
    return round(sum(float(row.get("seconds", 0.0)) for row in json.loads(log.read_text())), 1)


def ship_run(run_dir: Path, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Copy a run's weights into the package and export the ONNX graph beside them."""
    source = run_dir / args.weights
    if source.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{source} is {source.stat().st_size / 2**20:.1f} MB; shipped models must stay under 30 MB")
    card = read_card(source)
    stem = args.file_stem or f"{card.architecture}_{args.tag or trained_on(card)}"
    target = WEIGHTS_DIR / f"{stem}.safetensors"
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    card.extra = {**card.extra, "run": run_dir.name, "train_seconds": epoch_seconds(run_dir)}
    card.affectlens_version = __version__
    write_card_file(card, target)
    # the ONNX graph ships beside the weights and adds its torch-vs-ONNX check to the card, so
    # prediction on ONNX Runtime needs neither PyTorch nor an export at load time
    export_onnx(target, target.with_suffix(".onnx"))
    return target, []


def ship_ensemble(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Write the card of an ensemble of shipped models (named by their ``arch.tag``, so aliases may move)."""
    names = []
    for member in args.models:
        name = find_shipped(member)
        if name is None:
            raise SystemExit(f"--ensemble: '{member}' is not a shipped model; ship it first (members are shipped "
                             "models, referenced by name)")
        names.append(name)
    stem = args.file_stem or f"{args.tag or pretrained_entry(names[0])['tag']}_ensemble"
    card = write_ensemble_card(names, args.member_weights, WEIGHTS_DIR / f"{stem}.json", args.description,
                               mirror=bool(args.mirror))
    return card, []


def shipped_weights(spec: str) -> tuple[Path, list[str], str | None]:
    """Weights already in affectlens/weights/ (a table name or a file), their aliases and tag.

    For an ensemble, its card stands for the weights.
    """
    path = Path(spec)
    if path.suffix == ".safetensors" and path.exists():
        if path.resolve().parent != WEIGHTS_DIR:
            raise SystemExit(f"{path}: --rewrite-card-only measures weights inside {WEIGHTS_DIR} only")
        return path.resolve(), [], None
    entry = pretrained_entry(spec)
    return WEIGHTS_DIR / entry["files"][main_file_kind(entry)], list(entry["aliases"]), entry["tag"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*",
                        help="a run folder to ship; with --rewrite-card-only, shipped names or weights files "
                             "inside affectlens/weights (default: every model in the table)")
    parser.add_argument("--ensemble", action="store_true",
                        help="ship the named shipped models (two or more) as an ensemble card: the weighted mean "
                             "of their probabilities, no weights of its own")
    parser.add_argument("--member-weights", type=float, nargs="+",
                        help="with --ensemble: one weight per member (default equal)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="the model (with --ensemble: every member) also answers for the mirrored face, "
                             "averaged in; --no-mirror turns it off (default: as the card says, off for new ones)")
    parser.add_argument("--rewrite-card-only", action="store_true",
                        help="re-measure shipped weights and rewrite their cards and table entries; weights "
                             "and ONNX files are not touched")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="fit and store the temperature of shipped models (and their test ECE) only")
    parser.add_argument("--tag", default="", help="the part after the dot in arch.tag (default: the training data)")
    parser.add_argument("--alias", action="append", default=[], help="e.g. default, fast (repeatable)")
    parser.add_argument("--file-stem", default="",
                        help="file name inside affectlens/weights/ (default arch_tag; tag_ensemble for --ensemble)")
    parser.add_argument("--weights", default="best.safetensors", help="which weights of the run")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"),
                        help="folder holding fer2013/, ferplus/ and ckplus48/")
    parser.add_argument("--description", default="")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU may be shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.ensemble and args.rewrite_card_only:
        raise SystemExit("--ensemble ships a new ensemble; re-measure a shipped one with --rewrite-card-only NAME")
    if args.member_weights and not args.ensemble:
        raise SystemExit("--member-weights goes with --ensemble")
    if args.ensemble:
        target, aliases = ship_ensemble(args)
        targets = [(target, aliases, None)]
    elif args.rewrite_card_only or args.calibrate_only:
        specs = args.models or (list(json.loads(TABLE_FILE.read_text())["models"]) if TABLE_FILE.exists() else [])
        if not specs:
            raise SystemExit(f"{TABLE_FILE} lists no model; name weights files inside {WEIGHTS_DIR}")
        if len(specs) > 1 and (args.alias or args.description or args.tag):
            raise SystemExit("--alias, --tag and --description name one model: rewrite one model at a time with them")
        targets = [shipped_weights(spec) for spec in specs]
    else:
        if len(args.models) != 1:
            raise SystemExit("ship exactly one run folder at a time (or use --rewrite-card-only)")
        if not args.description:
            raise SystemExit("--description is required when shipping a run (it is shown by `affectlens models`)")
        target, aliases = ship_run(Path(args.models[0]), args)
        targets = [(target, aliases, None)]

    for weights, aliases, tag in targets:
        card = read_card(weights)
        if args.mirror is not None and not args.ensemble and card.mirror != args.mirror:
            if is_ensemble_card(weights):
                raise SystemExit(f"{weights.name}: an ensemble's mirroring is set when it is shipped (--ensemble "
                                 "--mirror), not on re-measuring")
            card.mirror = args.mirror  # written first: the measurements read the card from disk
            write_card_file(card, weights)
        tag = args.tag or tag or trained_on(card)
        print(f"{card.architecture}.{tag} ({weights.name}):", flush=True)
        with tempfile.TemporaryDirectory(prefix="affectlens-ship-") as reports:
            _, ece = calibrate(weights, card, args.data_root, Path(reports))
            if args.calibrate_only:
                metrics, notes = {**card.metrics, **ece}, {k: v for k, v in card.extra.items() if k in WRITTEN_EXTRA}
            else:
                metrics, notes = measure(weights, card, args.data_root, Path(reports))
                metrics |= ece
        card.description = args.description or card.description
        if not card.class_prior:
            card.class_prior = training_prior(weights, card, args.data_root)
        write_card(weights, card, metrics, notes)
        name, entry = table_entry(weights, read_card(weights), tag, sorted({*aliases, *args.alias}))
        update_table(name, entry)
        print(f"  wrote {sidecar_path(weights).name} and the {name} entry of {TABLE_FILE.name}", flush=True)
        stale = [other for other, row in read_table().items() if name in row.get("members", [])]
        # new member weights: the ensemble's numbers changed (a member's temperature does not: members answer raw)
        if stale and not (args.rewrite_card_only or args.ensemble or args.calibrate_only):
            print(f"  ensembles with {name} as a member: re-measure them: --rewrite-card-only {' '.join(stale)}")


if __name__ == "__main__":
    main()
