"""The check ids each OS family must run and pass: the one place the verdict reads them from.

An id missing from a run fails the OS, so deleting or renaming a check cannot make a template
pass silently. tests/mutation/ proves every id here fails on an image with its defect.
"""

from __future__ import annotations

SSH = (
    "ssh-password-auth",
    "ssh-root-login",
    "ssh-crypto",
    "ssh-auth-methods",
    "ssh-session-limits",
    "ssh-files",
    "ssh-moduli",
    "ssh-trust",
)
SYSTEM = (
    "system-sysctl",
    "system-file-modes",
    "system-legacy-services",
    "system-shadow-locked",
    "system-security-updates",
    "system-rootfs-grows",
    "system-listeners",
    "system-time-sync",
    "system-world-writable",
    "system-console-autologin",
    "system-console-shell",
)
GUEST_TOOLS = ("guest-agent-single", "guest-agent-reporting")
CLOUD_INIT = (
    "cloud-init-installed",
    "cloud-init-datasources",
    "cloud-init-clean-boot",
    "cloud-init-seed-applied",
    "cloud-init-security",
)
HYGIENE = (
    "hygiene-host-keys",
    "hygiene-machine-id",
    "hygiene-cloud-init-state",
    "hygiene-shell-history",
    "hygiene-build-user",
    "hygiene-sudoers",
    "hygiene-installer-files",
    "hygiene-network-state",
    "hygiene-caches-logs",
    "hygiene-first-boot-identity",
    "hygiene-credentials",
    "hygiene-account-backups",
)
IDENTITY = ("identity-os-release", "identity-root-disk")
# validations/test_persistence.py: what runs as root later, judged by who can write it.
PERSISTENCE = ("persistence-root-exec",)
NETWORK = ("network-renderer",)

# EL only (validations/test_el_security.py): SELinux, crypto policy, firewalld, NetworkManager.
EL_SECURITY = (
    "el-selinux-enforcing",
    "el-selinux-labels",
    "el-crypto-policy",
    "el-ssh-crypto-from-policy",
    "el-firewalld",
    "el-network-profiles",
)

_COMMON = SSH + SYSTEM + GUEST_TOOLS + CLOUD_INIT + HYGIENE + IDENTITY + NETWORK + PERSISTENCE

EXPECTED: dict[str, tuple[str, ...]] = {
    "debian": _COMMON,
    "el": _COMMON + EL_SECURITY,
}


def expected_checks(family: str) -> tuple[str, ...]:
    """The ids a template of `family` must pass; an unknown family is a catalog error."""
    try:
        return EXPECTED[family]
    except KeyError:
        raise KeyError(
            f"no expected checks for OS family {family!r}; known: {', '.join(EXPECTED)} "
            "(add it to validations/expected.py)"
        ) from None
