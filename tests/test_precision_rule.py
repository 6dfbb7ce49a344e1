"""``precision: auto`` on the CPU: bf16 only where it was measured faster than fp32 (docs/speed.md,
"Precision")."""

from __future__ import annotations

import pytest

from ban.training.device import fast_bf16_cpu

AVX2 = "fpu sse sse2 avx f16c fma avx2"
AVX512 = f"{AVX2} avx512f avx512dq avx512bw avx512vl avx512_vnni"


def cpuinfo(vendor: str, model: str, flags: str, processors: int = 2) -> str:
    """/proc/cpuinfo as Linux writes it: one block per logical processor, blank lines between them."""
    block = (
        f"processor\t: {{index}}\nvendor_id\t: {vendor}\ncpu family\t: 6\nmodel name\t: {model}\n"
        f"flags\t\t: {flags}\nbugs\t\t: spectre_v1\n"
    )
    return "\n".join(block.format(index=index) for index in range(processors)) + "\n"


@pytest.mark.parametrize(
    ("vendor", "model", "flags", "fast"),
    [
        (
            "GenuineIntel",
            "Intel(R) Xeon(R) Platinum 8480+ (AMX)",
            f"{AVX512} avx512_bf16 amx_bf16 amx_tile amx_int8",
            True,
        ),
        ("AuthenticAMD", "AMD EPYC 9R14 (AVX512-BF16)", f"{AVX512} avx512_bf16", True),
        (
            "GenuineIntel",
            "Intel(R) Xeon(R) Platinum 8375C (AVX512-BF16, no AMX)",
            f"{AVX512} avx512_bf16",
            False,
        ),
        ("AuthenticAMD", "AMD EPYC (AVX2 only)", AVX2, False),
        ("GenuineIntel", "Intel(R) Xeon(R) (AVX512, no bf16)", AVX512, False),
    ],
)
def test_bf16_only_on_the_cpu_families_measured_faster(vendor, model, flags, fast):
    assert fast_bf16_cpu(cpuinfo(vendor, model, flags)) is fast


def test_flags_are_whole_words_of_the_first_processor():
    # a flag that merely contains "avx512_bf16" is not it, and a later processor's entry is not read
    lookalike = cpuinfo("AuthenticAMD", "AMD EPYC", f"{AVX512} avx512_bf16x")
    assert not fast_bf16_cpu(lookalike)
    later = cpuinfo("AuthenticAMD", "AMD EPYC", AVX2, 1) + "\n" + cpuinfo("GenuineIntel", "x", "amx_bf16", 1)
    assert not fast_bf16_cpu(later)


def test_a_cpu_without_flags_trains_in_fp32():
    arm = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd bf16 i8mm\nCPU implementer\t: 0x41\n"
    assert not fast_bf16_cpu(arm) and not fast_bf16_cpu("")
