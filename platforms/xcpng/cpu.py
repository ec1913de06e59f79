"""The x86-64 microarchitecture level a pool can run, read from XAPI's `cpu_info`.

EL 10 is built for x86-64-v3 (AVX2, BMI1/2, FMA, MOVBE, F16C, LZCNT, ...) and EL 9 for
x86-64-v2: on an older or CPU-levelled pool their installer kernel stops before it fetches the
kickstart, which a build only reports as its install timeout. So preflight reads the CPUs.

What XAPI publishes (xen-api `create_misc.ml`, 8.2's 1.249 and 8.3 alike):
- `host.cpu_info`: `flags`, dom0's `/proc/cpuinfo` flags (Linux names), and `features_hvm`, the
  Xen featureset an HVM guest of that host may get: 32-bit words in hex joined by `-`
  (`Cpuid.string_of_features`), word order and bits as Xen's `cpufeatureset.h`;
- `pool.cpu_info`: `features_hvm` levelled over every host, which is what a VM starts with
  anywhere in the pool (`Cpuid_helpers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Feature:
    name: str  # as the x86-64 psABI lists it
    linux: str  # its /proc/cpuinfo flag
    word: int  # Xen featureset word (cpufeatureset.h)
    bit: int


V2 = (
    Feature("cx16", "cx16", 1, 13),
    Feature("lahf_lm", "lahf_lm", 3, 0),
    Feature("popcnt", "popcnt", 1, 23),
    Feature("sse3", "pni", 1, 0),
    Feature("sse4_1", "sse4_1", 1, 19),
    Feature("sse4_2", "sse4_2", 1, 20),
    Feature("ssse3", "ssse3", 1, 9),
)
V3 = (
    *V2,
    Feature("avx", "avx", 1, 28),
    Feature("avx2", "avx2", 5, 5),
    Feature("bmi1", "bmi1", 5, 3),
    Feature("bmi2", "bmi2", 5, 8),
    Feature("f16c", "f16c", 1, 29),
    Feature("fma", "fma", 1, 12),
    Feature("lzcnt", "abm", 3, 5),
    Feature("movbe", "movbe", 1, 22),
    Feature("xsave", "xsave", 1, 26),
)
LEVELS: Mapping[int, tuple[Feature, ...]] = {1: (), 2: V2, 3: V3}


def parse_features(text: str) -> list[int] | None:
    """`features_hvm` as its words; None when absent or not in XAPI's form."""
    words = [w for w in str(text or "").strip().split("-") if w]
    try:
        return [int(w, 16) for w in words] or None
    except ValueError:
        return None


def missing(level: int, cpu_info: Mapping[str, Any]) -> list[str] | None:
    """The features of x86-64-v`level` this cpu_info lacks ([] when it has them all); None
    when it says nothing either way."""
    wanted = LEVELS.get(level, ())
    words = parse_features(str(cpu_info.get("features_hvm", "")))
    if words is not None:
        return [f.name for f in wanted if f.word >= len(words) or not (words[f.word] >> f.bit) & 1]
    flags = set(str(cpu_info.get("flags", "")).split())
    if not flags:
        return None
    return [f.name for f in wanted if f.linux not in flags]
