"""The CPU r1lab runs on: its kind (model name, cores, the flags that decide how fast bf16 is) and the precision
that is fastest on it.

Two kinds of CPU run this project: AVX2 only, where PyTorch emulates bf16 (slower than float32), and AVX-512 with
AVX512-BF16 and AMX, where a bf16 matmul ran 6x float32's speed (docs/results.md names the kind beside each figure).
Read from /proc/cpuinfo, once per call; no state is kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from r1lab.errors import UserError

CPUINFO = "/proc/cpuinfo"
# The flags that decide how fast PyTorch's CPU kernels run, in the order they are printed.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
BF16_UNITS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class CpuKind:
    """What a benchmark or a run names beside its figures."""

    model_name: str
    cores: int
    flags: frozenset[str]
    known: bool = True  # False where the flags could not be read (not Linux): bf16 units are then assumed

    @property
    def bf16_units(self) -> bool:
        """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); without, PyTorch emulates it."""
        return not self.known or bool(self.flags & BF16_UNITS)

    @property
    def kind(self) -> str:
        """``amx``, ``avx512-bf16``, ``avx512``, ``avx2`` or ``unknown``: the name results are filed under."""
        if not self.known:
            return "unknown"
        if "amx_bf16" in self.flags:
            return "amx"
        if "avx512_bf16" in self.flags:
            return "avx512-bf16"
        if "avx512f" in self.flags:
            return "avx512"
        return "avx2" if "avx2" in self.flags else "other"

    def describe(self) -> str:
        """One line: model name, cores, kind and the speed flags present, e.g. for a benchmark's header."""
        present = [flag for flag in SPEED_FLAGS if flag in self.flags]
        precision = "bf16 in hardware" if self.bf16_units else "bf16 emulated"
        return f"{self.model_name}, {self.cores} cores, {self.kind} ({precision}; flags: {' '.join(present) or 'none'})"

    def as_dict(self) -> dict:
        return {
            "model_name": self.model_name,
            "cores": self.cores,
            "kind": self.kind,
            "bf16_units": self.bf16_units,
            "flags": [flag for flag in SPEED_FLAGS if flag in self.flags],
        }


def parse_cpuinfo(text: str, cores: int | None = None) -> CpuKind:
    """The kind of the CPU ``text`` (the contents of /proc/cpuinfo) describes; its first processor is read."""
    model_name, flags = "unknown CPU", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model_name == "unknown CPU":
            model_name = value.strip() or model_name
        elif key == "flags" and flags is None:
            flags = frozenset(value.split())
    return CpuKind(model_name, cores or os.cpu_count() or 1, flags or frozenset(), known=flags is not None)


def cpu_kind(path: str = CPUINFO) -> CpuKind:
    """This machine's CPU kind; where ``path`` cannot be read (not Linux), an unknown kind that assumes bf16 units."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_cpuinfo(handle.read())
    except OSError:
        return CpuKind("unknown CPU", os.cpu_count() or 1, frozenset(), known=False)


# What ``auto`` precision means on a CPU, for every process of a run (tests set fp32 so that the suite computes
# alike on every kind of CPU; a user can force either): auto (by the CPU's kind), fp32 or bf16.
CPU_PRECISION_ENV = "R1LAB_CPU_PRECISION"
CPU_PRECISIONS = ("auto", "fp32", "bf16")


def cpu_computes_bf16(kind: CpuKind | None = None) -> bool:
    """Whether r1lab computes in bf16 on this CPU where a setting leaves the precision to it: where the CPU has
    bf16 units (a bf16 matmul ran 6x float32's on an AMX CPU here; on AVX2 bf16 is emulated and slower), unless
    ``R1LAB_CPU_PRECISION`` is fp32 or bf16."""
    choice = (os.environ.get(CPU_PRECISION_ENV) or "auto").strip().lower()
    if choice not in CPU_PRECISIONS:
        raise UserError(f"{CPU_PRECISION_ENV} must be one of {', '.join(CPU_PRECISIONS)}, got {choice!r}")
    if choice != "auto":
        return choice == "bf16"
    return (kind or cpu_kind()).bf16_units
