"""What this machine's CPU is: its model, its cores and whether it computes bfloat16 natively.

A CPU with bfloat16 instructions (x86's AVX512_BF16 or AMX-BF16, Arm's BF16) runs oneDNN's
bfloat16 convolutions natively; elsewhere TensorFlow emulates them, which can be slower than
float32. So mixed precision's "auto" turns bfloat16 on only where this says it is native, and
the benchmarks print it beside their numbers (CPUs differ between machines).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # /proc/cpuinfo's names: x86 (flags), Arm (Features)


@dataclass(frozen=True)
class CpuInfo:
    model: str  # "AMD EPYC", from /proc/cpuinfo (platform.processor() elsewhere)
    cores: int  # logical CPUs this process may use
    bf16: tuple[str, ...]  # the bfloat16 instruction sets it has; () = emulated

    @property
    def native_bfloat16(self) -> bool:
        return bool(self.bf16)

    def describe(self) -> str:
        native = f"native bfloat16 ({', '.join(self.bf16)})" if self.bf16 else "bfloat16 emulated"
        return f"{self.model}, {self.cores} cores, {native}"


def cpu_info(cpuinfo: str | None = None) -> CpuInfo:
    """This machine's CpuInfo; `cpuinfo` is /proc/cpuinfo's text (read when None)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and value.strip():
            model = value.strip()
        if key in ("flags", "features"):
            flags.update(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return CpuInfo(model, cores, tuple(flag for flag in BF16_FLAGS if flag in flags))
