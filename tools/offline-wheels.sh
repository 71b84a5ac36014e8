#!/usr/bin/env bash
# Download, on a machine that reaches the package index, every wheel that hbens needs beyond a GPU image
# that already ships CUDA, torch, torchvision, numpy, numba, OpenCV, pandas, scikit-image (with scipy) and
# timm; then, on the offline node:
#     pip install --no-index --find-links DIR hbens
#
# Usage: tools/offline-wheels.sh DIR [--python 3.12] [--platform TAG]... [--also PKG]...
#   DIR          folder for the wheels (created; files already there are kept)
#   --python     the offline node's Python version, X.Y (default 3.12)
#   --platform   a wheel platform tag of the node (repeatable; default: manylinux2014_x86_64,
#                manylinux_2_17_x86_64, manylinux_2_28_x86_64)
#   --also PKG   also download PKG (a requirement, e.g. opencv-python-headless when the image ships
#                opencv-python, whose wheel pip does not count as hbens's opencv-python-headless)
#
# What is downloaded: the dependency closure of hbens's requirements, resolved by pip for the node's Python
# and platforms, less the closure of the image's packages (IMAGE below) -- except the direct requirements of
# hbens, segmentation-models-pytorch and ttach that are small (not in HEAVY), which are kept even when the
# image may have them, so that an image with older versions (say an older huggingface_hub) still installs.
# pip installs from DIR only what the node lacks. pydensecrf2 publishes no wheels: it is built here with
# pythonX.Y when that interpreter is on PATH (needs a C++ compiler), else its source archive and its build
# requirements are downloaded and the node needs a C++ compiler (see the README, "Offline GPU nodes").
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in -*) usage ;; esac
DIR=$1; shift
PYVER=3.12
PLATFORMS=()
ALSO=()
while [ $# -gt 0 ]; do
    case "$1" in
        --python) [ $# -ge 2 ] || usage; PYVER=$2; shift 2 ;;
        --platform) [ $# -ge 2 ] || usage; PLATFORMS+=("$2"); shift 2 ;;
        --also) [ $# -ge 2 ] || usage; ALSO+=("$2"); shift 2 ;;
        -h|--help) usage ;;
        *) echo "offline-wheels.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $PYVER =~ ^3\.[0-9]+$ ]] || { echo "offline-wheels.sh: --python $PYVER: expected X.Y such as 3.12" >&2; exit 2; }
[ ${#PLATFORMS[@]} -gt 0 ] || PLATFORMS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_28_x86_64)

IMAGE="torch torchvision numpy numba opencv-python-headless pandas scikit-image scipy timm"
HEAVY="torch torchvision triton numpy numba llvmlite opencv-python opencv-python-headless pandas scikit-image scipy timm"
ABI=cp${PYVER/./}
PIP=(python3 -m pip)
TARGET=(--only-binary=:all: --python-version "$PYVER" --implementation cp --abi "$ABI")
for platform in "${PLATFORMS[@]}"; do TARGET+=(--platform "$platform"); done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s)

echo "== hbens wheel"
"${PIP[@]}" wheel --quiet --no-deps "$ROOT" -w "$DIR"
WHEEL=$(ls -t "$DIR"/hbens-*.whl | head -1)

echo "== resolving for Python $PYVER on ${PLATFORMS[*]}"
# hbens's requirements (from the wheel's metadata), pydensecrf2 aside (no wheel to resolve with).
python3 - "$WHEEL" > "$WORK/needs.txt" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    lines = wheel.read(meta).decode().splitlines()
for line in lines:
    if line.startswith("Requires-Dist:") and "extra ==" not in line and "pydensecrf2" not in line:
        print(line.split(":", 1)[1].strip())
EOF
printf '%s\n' "${ALSO[@]+"${ALSO[@]}"}" >> "$WORK/needs.txt"
resolve() {  # resolve REPORT REQUIREMENTS...: pip's dry-run report of the closure for the node
    local report=$1; shift
    "${PIP[@]}" install --quiet --dry-run --ignore-installed --target "$WORK/unused" --report "$report" "${TARGET[@]}" "$@"
}
resolve "$WORK/needs.json" -r "$WORK/needs.txt"
# shellcheck disable=SC2086
resolve "$WORK/image.json" $IMAGE

python3 - "$WORK" "$HEAVY" "${ALSO[@]+"${ALSO[@]}"}" > "$WORK/download.txt" <<'EOF'
import json, re, sys
from pathlib import Path

work, heavy, also = Path(sys.argv[1]), set(sys.argv[2].split()), sys.argv[3:]
def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()
def closure(report):
    return {canon(item["metadata"]["name"]): item for item in json.loads((work / report).read_text())["install"]}
needs, image = closure("needs.json"), closure("image.json")
direct = {"hbens", "segmentation-models-pytorch", "ttach"}
named = {canon(re.split(r"[^A-Za-z0-9_.-]", req, maxsplit=1)[0])
         for name, item in needs.items() if name in direct for req in item["metadata"].get("requires_dist", [])
         if "extra ==" not in req}
named |= {canon(re.split(r"[^A-Za-z0-9_.-]", line, maxsplit=1)[0])
          for line in (work / "needs.txt").read_text().split("\n") if line.strip()}
forced = {canon(re.split(r"[^A-Za-z0-9_.-]", a, maxsplit=1)[0]) for a in also}
heavy = {canon(h) for h in heavy} - forced
for name, item in sorted(needs.items()):
    if name in forced:
        keep = True
    elif name in heavy or name.startswith(("nvidia-", "cuda-")):
        keep = False
    else:
        keep = name not in image or name in named
    if keep:
        print(f"{item['metadata']['name']}=={item['metadata']['version']}")
EOF
echo "   $(wc -l < "$WORK/download.txt") wheels: $(tr '\n' ' ' < "$WORK/download.txt")"

echo "== downloading"
"${PIP[@]}" download --quiet --no-deps "${TARGET[@]}" -d "$DIR" -r "$WORK/download.txt"

echo "== pydensecrf2 (no wheels on the index)"
if "python$PYVER" -c "" 2> /dev/null; then
    "python$PYVER" -m pip wheel --quiet --no-deps "pydensecrf2>=1.1" -w "$DIR"
    echo "   built a wheel with python$PYVER"
else
    "${PIP[@]}" download --quiet --no-deps --no-binary=:all: "pydensecrf2>=1.1" -d "$DIR"
    "${PIP[@]}" download --quiet "${TARGET[@]}" -d "$DIR" "setuptools>=68" wheel "Cython<3.1" numpy
    echo "   no python$PYVER here: downloaded its source and build requirements; the node needs a C++ compiler"
fi

echo "== $DIR: $(ls "$DIR" | wc -l) files, $(du -sh "$DIR" | cut -f1), $(( $(date +%s) - started )) s"
echo "on the node: pip install --no-index --find-links $DIR hbens"
