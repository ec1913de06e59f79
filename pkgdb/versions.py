"""Which of two versions of a package is newer, by its package manager's own rules.

dpkg's: python-debian's `version_compare` (epochs, `~`, the upstream/revision split). rpm's:
`epoch:version-release`, epochs as numbers, then version and release by rpmvercmp
(rpm's lib/rpmvercmp.c: alternating runs of digits and letters, digits beat letters, leading
zeros ignored, `~` sorts before anything, `^` after the end but before anything else).
"""

from __future__ import annotations

from debian.debian_support import version_compare

_DIGITS = "0123456789"
_ALNUM = _DIGITS + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def compare(kind: str, a: str, b: str) -> int:
    """<0, 0, >0 as a is older than, the same as, newer than b (kind: deb or rpm)."""
    if kind == "deb":
        return version_compare(a, b)
    return compare_evr(a, b)


def compare_evr(a: str, b: str) -> int:
    ea, va, ra = _evr(a)
    eb, vb, rb = _evr(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return rpmvercmp(va, vb) or rpmvercmp(ra, rb)


def _evr(text: str) -> tuple[int, str, str]:
    epoch, sep, rest = text.partition(":")
    if not sep or not epoch.isdigit():
        epoch, rest = "0", text
    version, _, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch), version, release


def rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < len(b) and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ca, cb = a[i : i + 1], b[j : j + 1]
        if "~" in (ca, cb):
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if "^" in (ca, cb):
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not ca or not cb:
            break
        numeric = ca in _DIGITS
        kind = _DIGITS if numeric else _ALNUM[10:]
        i2, j2 = i, j
        while i2 < len(a) and a[i2] in kind:
            i2 += 1
        while j2 < len(b) and b[j2] in kind:
            j2 += 1
        one, two = a[i:i2], b[j:j2]
        if not two:  # different kinds of run: a number is newer than letters
            return 1 if numeric else -1
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
        i, j = i2, j2
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1
