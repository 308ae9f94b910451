#!/usr/bin/env bash
# Install footprint of affectlens: one fresh virtual environment per install variant, then the size
# of its site-packages, its number of installed distributions (pip list, pip/setuptools included),
# and for the prediction-only install the proof that it predicts without torch.
#
# Why a script: the README states these numbers; rerun this to check them after a dependency change.
# It needs network access to PyPI (installs only; nothing is uploaded) and writes only under WORK.
#
#   benchmarks/install_footprint.sh [WORK_DIR]        (default /tmp/affectlens_footprint)
#
# Variants, spelled exactly as the README spells them:
#   predict : pip install .                                  (prediction tool; no torch)
#   batch   : pip install ".[batch]"                         (prediction + Ray and pyarrow: predict --engine ray)
#   train   : pip install "torch==2.13.0" ".[train]"         (torch's CPU build named in the same call)
#   dev     : pip install "torch==2.13.0" ".[dev,serve]"     (the README's test command)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/tmp/affectlens_footprint}"
PHOTO="$REPO/../shared/media/multi_face.jpg"
[ -f "$PHOTO" ] || PHOTO=/work/shared/media/multi_face.jpg
PY="${PYTHON:-python3}"
mkdir -p "$WORK"

declare -A SPECS=(
    [predict]="."
    [batch]=".[batch]"
    [train]="torch==2.13.0 .[train]"
    [dev]="torch==2.13.0 .[dev,serve]"
)

echo "date: $(date -u +%Y-%m-%d)  python: $($PY --version 2>&1)  platform: $(uname -sm)"
printf '| variant | pip install | site-packages | distributions |\n|---|---|---|---|\n'
for variant in predict batch train dev; do
    venv="$WORK/$variant"
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    # shellcheck disable=SC2086  # the spec is a list of requirement words
    (cd "$REPO" && "$venv/bin/pip" install -q --disable-pip-version-check ${SPECS[$variant]}) >"$WORK/$variant.log" 2>&1 \
        || { echo "install of $variant failed, see $WORK/$variant.log" >&2; exit 1; }
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    size="$(du -sh "$site" | cut -f1)"
    count="$("$venv/bin/pip" list --disable-pip-version-check --format=freeze 2>/dev/null | wc -l)"
    printf '| %s | `pip install %s` | %s | %s |\n' "$variant" "${SPECS[$variant]}" "$size" "$count"
done

# The prediction-only install must predict without torch.
venv="$WORK/predict"
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "FAIL: torch is importable in the prediction-only install" >&2
    exit 1
fi
echo "predict install: 'import torch' fails (ModuleNotFoundError), as it should"
rm -rf "$WORK/predict_out"
(cd "$WORK" && "$venv/bin/affectlens" predict "$PHOTO" -o "$WORK/predict_out")
echo "predict install: affectlens predict wrote: $(cd "$WORK/predict_out" && ls | tr '\n' ' ')"

# What the bare range `.[train]` (no torch named) resolves to here, without installing it: on Linux
# PyPI's default torch wheel is a CUDA build, which brings the nvidia-* / triton packages.
dry="$WORK/dry"
rm -rf "$dry" && "$PY" -m venv "$dry"
(cd "$REPO" && "$dry/bin/pip" install -q --disable-pip-version-check --dry-run --ignore-installed \
    --report "$WORK/train_bare.json" ".[train]") >"$WORK/dry.log" 2>&1
"$dry/bin/python" - "$WORK/train_bare.json" <<'PY'
import json
import sys

items = json.load(open(sys.argv[1]))["install"]
names = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in items}
cuda = sorted(n for n in names if n.startswith(("nvidia", "cuda", "triton")))
print(f"bare .[train] would install {len(items)} distributions: torch {names.get('torch')}, "
      f"{len(cuda)} CUDA/triton packages ({', '.join(cuda[:3])}, ...)")
PY
