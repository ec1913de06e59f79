"""What a fresh pool of each XCP-ng release holds before anyone uses it, for the twin: the
templates guest-templates-json installs, the guest-tools ISO, and the hosts' `cpu_info`.

Written from the public sources, independently of `platforms.xcpng` (so the two check each
other): template names from xcp-ng-rpms/guest-templates-json ("Debian Trixie 13" on the 8.3
branch only; "Generic Linux UEFI" on 8.2 from guest-templates-json 1.10.7, an updated 8.2, which
is what the twin plays); `cpu_info` fields as xen-api's `create_misc.ml` fills them (`flags`
from dom0's /proc/cpuinfo, `features_hvm` as Xen featureset words `%08x` joined by `-`, bits
as in Xen's `cpufeatureset.h`).
"""

from __future__ import annotations

from collections.abc import Iterable

TEMPLATES_82 = (
    "Other install media",
    "Generic Linux BIOS",
    "Generic Linux UEFI",
    "Debian Bullseye 11",
    "Debian Bookworm 12",
    "AlmaLinux 9",
    "Rocky Linux 9",
    "CentOS Stream 9",
)
TEMPLATES = {"8.2": TEMPLATES_82, "8.3": (*TEMPLATES_82, "Debian Trixie 13")}
PRODUCT_VERSION = {"8.2": "8.2.1", "8.3": "8.3.0"}
TOOLS_ISO = "guest-tools.iso"

# (word, bit, /proc/cpuinfo name) of what x86-64-v2 and -v3 add, per cpufeatureset.h
_BITS = {
    "sse3": (1, 0, "pni"),
    "ssse3": (1, 9, "ssse3"),
    "fma": (1, 12, "fma"),
    "cx16": (1, 13, "cx16"),
    "sse4_1": (1, 19, "sse4_1"),
    "sse4_2": (1, 20, "sse4_2"),
    "movbe": (1, 22, "movbe"),
    "popcnt": (1, 23, "popcnt"),
    "xsave": (1, 26, "xsave"),
    "avx": (1, 28, "avx"),
    "f16c": (1, 29, "f16c"),
    "lahf_lm": (3, 0, "lahf_lm"),
    "lzcnt": (3, 5, "abm"),
    "bmi1": (5, 3, "bmi1"),
    "avx2": (5, 5, "avx2"),
    "bmi2": (5, 8, "bmi2"),
}
# What an x86-64 CPU always has: CPUID 1 EDX (FPU ... SSE2) and 0x80000001 EDX (SYSCALL, NX, LM)
_BASE_WORDS = {0: 0x078BFBFF, 2: 0x2C100800}
_BASE_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr"
_BASE_FLAGS += " sse sse2 ht syscall nx lm"
HASWELL_LACKS = ()  # the default twin host: a CPU with x86-64-v3
WESTMERE_LACKS = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")


def cpu_info(lacking: Iterable[str] = HASWELL_LACKS, words: int = 12) -> dict[str, str]:
    """A host's `cpu_info` whose CPU has every feature above but `lacking`."""
    skip = set(lacking)
    unknown = skip - set(_BITS)
    if unknown:
        raise ValueError(f"unknown CPU features {sorted(unknown)}")
    out = [_BASE_WORDS.get(i, 0) for i in range(words)]
    flags = _BASE_FLAGS.split()
    for name, (word, bit, linux) in _BITS.items():
        if name not in skip:
            out[word] |= 1 << bit
            flags.append(linux)
    features = "-".join(f"{w:08x}" for w in out)
    return {
        "cpu_count": "16",
        "socket_count": "1",
        "vendor": "GenuineIntel",
        "speed": "2400.000",
        "modelname": "Twin CPU",
        "family": "6",
        "model": "63",
        "stepping": "2",
        "flags": " ".join(flags),
        "features_pv": features,
        "features_hvm": features,
        "features_pv_host": features,
        "features_hvm_host": features,
    }


def levelled(*infos: dict[str, str]) -> dict[str, str]:
    """`pool.cpu_info`: the features every host has (XAPI levels HVM features over hosts)."""
    words = [[int(w, 16) for w in i["features_hvm"].split("-")] for i in infos]
    common = [min_and(col) for col in zip(*words, strict=True)]
    features = "-".join(f"{w:08x}" for w in common)
    return {
        "cpu_count": str(sum(int(i["cpu_count"]) for i in infos)),
        "socket_count": str(sum(int(i["socket_count"]) for i in infos)),
        "vendor": infos[0]["vendor"],
        "features_pv": features,
        "features_hvm": features,
        "features_pv_host": features,
        "features_hvm_host": features,
    }


def min_and(values: Iterable[int]) -> int:
    out = -1
    for v in values:
        out &= v
    return out & 0xFFFFFFFF
