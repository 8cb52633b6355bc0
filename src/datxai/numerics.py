"""CPU numerics that decide the bits of torch results: instruction set and thread count.

The reproducibility contract (README, "Reproducibility"): the CNN steps (training,
evaluation, LRP) on a CPU give bit-identical results on any x86-64 CPU with AVX2
when they run with the same ``numerics`` config, whatever the CPU's widest
instruction set and however many cores the job was given. Two things otherwise
change the floating-point rounding of torch's kernels, and training amplifies a
rounding difference into another model within a few epochs (measured on the demo:
the no-striatum net's test accuracy 0.947 with AVX-512 kernels, 0.893 with AVX2):

* **the instruction set.** oneDNN (convolutions), MKL (the fully connected
  layers' GEMMs) and ATen's vectorised kernels each pick the widest set the CPU
  has (AVX-512 or AVX2), and a different vector width sums in a different order.
  ``cpu_isa: avx2`` caps all three at AVX2 through their documented switches:
  ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN "CPU dispatcher control"),
  ``MKL_CBWR=AVX2`` (MKL "conditional numerical reproducibility", the AVX2 code
  branch on any processor that has it) and ``ATEN_CPU_CAPABILITY=avx2``.
  ``native`` leaves them alone (the fastest kernels, results tied to the CPU).
* **the number of threads.** oneDNN and MKL split reductions over threads, so
  2 threads and 1 thread give different sums. ``cpu_threads`` fixes torch's
  intra-op threads, independent of the cores a job was granted (a job with fewer
  cores runs slower, with the same numbers).

The three libraries read their switches when they first run a kernel, not at
``import torch``: :func:`pin_cpu_numerics` must run before the first torch
computation of the process (the rule adapters call it first thing). On a CUDA
device none of this applies: GPU results agree with the CPU's to a stated
tolerance (``tests/test_gpu.py``), not bit for bit. CPUs without AVX2 and non-x86
CPUs (ARM) run with their own kernels: reproducible run to run, not bit-identical
to x86.

This module imports torch only inside functions (it sits at the bottom of the
package, beside :mod:`datxai.devices`).
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass

from .checks import check_choice, check_range

logger = logging.getLogger(__name__)

CPU_ISAS = ("avx2", "native")
# the documented switch of each library, and its value for each pinned ISA
_SWITCHES = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


@dataclass(frozen=True)
class CpuNumerics:
    """What decided the bits of a CPU torch step (written to hyperparameters and provenance)."""

    cpu_isa: str
    cpu_threads: int
    aten_capability: str
    cpu_model: str
    cpu_flags: str
    machine: str
    switches: dict

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_description() -> tuple[str, str]:
    """``(model name, widest SIMD flags)`` of this CPU (from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if model and flags and key == "":
                    break
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx512_bf16", "avx2", "fma", "avx") if f in flags]
    return model, " ".join(simd)


def numerics_switches() -> dict:
    """The libraries' instruction-set switches as this process's environment sets them (None = unset)."""
    return {k: os.environ.get(k) for k in _SWITCHES["avx2"]}


def pin_cpu_numerics(cpu_isa: str = "avx2", cpu_threads: int = 2) -> CpuNumerics:
    """Fix the instruction set and thread count of torch's CPU kernels for this process.

    Call it before the process's first torch computation (the switches are read
    then). ``cpu_isa``: ``avx2`` (the default of the config: the same bits on any
    x86-64 CPU with AVX2) or ``native`` (leave the libraries' own choice and
    the environment as they are). ``cpu_threads``: torch's intra-op threads.
    Returns the record of what applies (:class:`CpuNumerics`).
    """
    check_choice("numerics.cpu_isa", cpu_isa, CPU_ISAS)
    check_range("numerics.cpu_threads", int(cpu_threads), 1)
    model, flags = cpu_description()
    switches = dict(_SWITCHES.get(cpu_isa, {}))
    if switches and platform.machine().lower() not in ("x86_64", "amd64"):
        logger.warning("numerics.cpu_isa %s applies to x86-64 CPUs; this is %s: its own kernels run "
                       "(reproducible here, not bit-identical to x86)", cpu_isa, platform.machine())
        switches = {}
    elif switches and "avx2" not in flags.split():
        logger.warning("numerics.cpu_isa %s: this CPU (%s) has no AVX2; narrower kernels run and results "
                       "are not bit-identical to AVX2 machines", cpu_isa, model)
    os.environ.update(switches)
    import torch

    torch.set_num_threads(int(cpu_threads))
    capability = torch.backends.cpu.get_cpu_capability()
    record = CpuNumerics(cpu_isa=cpu_isa, cpu_threads=int(torch.get_num_threads()), aten_capability=capability,
                         cpu_model=model, cpu_flags=flags, machine=platform.machine(),
                         switches=numerics_switches())
    if switches and capability.lower() != "avx2" and "avx2" in flags.split():
        raise RuntimeError(f"numerics.cpu_isa {cpu_isa}: torch already chose its {capability} kernels in this "
                           "process; pin_cpu_numerics must run before the first torch computation")
    logger.info("CPU numerics: %s kernels (ATen %s), %d threads, on %s [%s]", cpu_isa, capability,
                record.cpu_threads, model, flags)
    return record
