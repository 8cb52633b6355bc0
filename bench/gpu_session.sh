#!/usr/bin/env bash
# Every GPU row of BENCHMARKS.md on a GPU machine (the `device` tool's `run`), in two kinds of call
# (each call's carried files must stay under 64 MiB):
#
#   here:   bash bench/gpu_wheels.sh                          # wheels the machine lacks -> .whl/ (~26 MB)
#   there:  run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=600)  # train, registration, LRP, FBP, tests
#   here:   bash bench/gpu_session.sh --stage RESULTS full striatum    # a finished demo's models + test sets
#   there:  run(command="bash bench/gpu_session.sh agreement", carry=[".gpu_carry"])
#   here:   bash bench/gpu_session.sh --stage RESULTS nostriatum      # (a demo model is ~34 MB)
#   there:  the same agreement call again
#
# Writes one text file per step (and device.txt) to $OUT (or bench_out/): the benchmarks, then the
# GPU tests (tests/test_gpu.py: GPU vs CPU registration, predictions, LRP, training). ~9 min at most.
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
if [ "${1:-}" != "agreement" ] && ls .whl/*.whl >/dev/null 2>&1; then   # the agreement needs none of them
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; nproc; } > "$out/device.txt" 2>&1
cat "$out/device.txt"
# each step under its own time limit (a call may run 600 s at most): a slow step cannot starve the next one
step() { local name=$1 limit=$2; shift 2; echo "=== $name: $*"; local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"; echo "=== $name: $((SECONDS - t0)) s (limit $limit s)"; }
if [ "${1:-}" != "agreement" ]; then
  step train 200 python3 bench/bench_train.py --threads 8 --skip-paper --paper-settings --measure-epochs 3
  step register 90 python3 bench/bench_register.py --n 16 --grids paper --batched cuda
  step lrp 100 python3 bench/bench_lrp.py --devices cuda --batch 8 --threads 8
  step fbp 60 python3 bench/bench_fbp.py --repeats 5
  step gpu_tests 90 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_recon_fbp.py tests/test_register_batched.py
elif [ -d .gpu_carry/results ]; then
  step agreement 300 python3 bench/bench_agreement.py --results .gpu_carry/results --out "$out/agreement.tsv"
else
  echo "agreement: no .gpu_carry/results (see --stage)"; exit 1
fi
