"""Which of MKL's reproducibility branches (MKL_CBWR) change the bits of a CNN step on this CPU?

Runs the tiny train / evaluate / LRP case of tests/test_numerics.py once per ``MKL_CBWR`` value, each in a
fresh process with oneDNN and ATen capped at AVX2 (as ``numerics.cpu_isa: avx2``) and 2 threads, and prints
the hashes of the weights, logits and relevance. On an Intel CPU each branch it supports is its own code
path. Intel's oneMKL guide says that on non-Intel CPUs a branch such as AVX2 "may cause results to differ
because the AUTO branch is used instead". On AMD EPYC (Zen 5, session 13) AVX2, AUTO, SSE4_2, AVX512 and
AVX2,STRICT gave one set of bits and COMPATIBLE another: only COMPATIBLE is honoured there, so the
``avx2`` pin does not make Intel and AMD CPUs round the fully connected layers alike (BENCHMARKS.md,
"Reproducibility across CPUs and seeds").

    python bench/numerics_branches.py [--branches AVX2 AUTO COMPATIBLE ...]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_numerics  # noqa: E402  (the case and the switches it clears)

from datxai.numerics import cpu_description  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", nargs="+", default=["AVX2", "AUTO", "COMPATIBLE", "SSE4_2", "AVX512", "AVX2,STRICT"])
    a = ap.parse_args(argv)
    print("CPU:", " / ".join(cpu_description()))
    base = {k: v for k, v in os.environ.items() if k not in test_numerics.SWITCHES}
    seen = {}
    for branch in a.branches:
        env = {**base, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": branch}
        proc = subprocess.run([sys.executable, "-c", test_numerics.SCRIPT, "native", "2"], capture_output=True,
                              text=True, env=env, timeout=300)
        if proc.returncode != 0:
            print(f"MKL_CBWR={branch}: failed\n{proc.stderr[-1000:]}")
            continue
        rec = json.loads(proc.stdout.strip().splitlines()[-1])
        key = (rec["weights"], rec["logits"], rec["relevance"])
        same = seen.setdefault(key, branch)
        print(f"MKL_CBWR={branch:12s} weights {rec['weights']} logits {rec['logits']} relevance {rec['relevance']}"
              + ("" if same == branch else f"  (= {same})"))


if __name__ == "__main__":
    main()
