"""The CPU kind read from /proc/cpuinfo text: the kinds results are filed under, and which compute bf16 natively."""

from __future__ import annotations

from r1lab.hardware import cpu_kind, parse_cpuinfo

AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"
AMX = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)


def test_an_avx2_cpu_emulates_bf16():
    kind = parse_cpuinfo(AVX2, cores=2)
    assert (kind.kind, kind.bf16_units, kind.model_name, kind.cores) == ("avx2", False, "AMD EPYC", 2)
    assert kind.describe() == "AMD EPYC, 2 cores, avx2 (bf16 emulated; flags: avx2)"


def test_an_amx_cpu_computes_bf16():
    kind = parse_cpuinfo(AMX, cores=2)
    assert (kind.kind, kind.bf16_units) == ("amx", True)
    assert kind.as_dict()["flags"] == ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]


def test_avx512_with_and_without_bf16():
    assert parse_cpuinfo("flags : avx2 avx512f avx512_bf16\n").kind == "avx512-bf16"
    plain = parse_cpuinfo("flags : avx2 avx512f\n")
    assert (plain.kind, plain.bf16_units) == ("avx512", False)


def test_unreadable_flags_assume_bf16_units(tmp_path):
    missing = cpu_kind(str(tmp_path / "no-cpuinfo"))
    assert (missing.kind, missing.bf16_units) == ("unknown", True)
    assert parse_cpuinfo("model name : x\n").kind == "unknown"
