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
    "system-rootfs-grows",
    "system-listeners",
    "system-time-sync",
    "system-logging",
    "system-boot-clean",
    "system-world-writable",
    "system-console-autologin",
    "system-package-sources",
    "system-setuid",
    "system-package-integrity",
    "system-console-shell",
)
# Who can log in and who is root (validations/test_accounts.py, test_sudo.py).
ACCOUNTS = (
    "accounts-identities",
    "accounts-login",
    "accounts-file-owners",
    "accounts-umask",
    "sudo-policy",
)
GUEST_TOOLS = ("guest-agent-single", "guest-agent-reporting", "guest-xen-drivers")
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
    "hygiene-machine-state",
)
IDENTITY = ("identity-os-release", "identity-root-disk")
# What a clone inherits and trusts (validations/test_trust.py); the package manager's by family.
TRUST = ("trust-ca-bundle", "trust-ssh-client", "trust-pam")
TRUST_APT = ("trust-apt",)
TRUST_DNF = ("trust-dnf",)
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

# Debian and Ubuntu only: mandatory access control is AppArmor there (EL's is SELinux).
DEBIAN_SECURITY = ("system-apparmor",)
# Pending security updates, one mechanism per family (validations/test_packages.py): Debian's
# package database read offline against the host's archive cache; EL's dnf in the clone.
DEBIAN_UPDATES = ("system-security-updates",)
EL_UPDATES = ("el-security-updates",)

_COMMON = (
    SSH
    + SYSTEM
    + ACCOUNTS
    + GUEST_TOOLS
    + CLOUD_INIT
    + HYGIENE
    + IDENTITY
    + NETWORK
    + TRUST
    + PERSISTENCE
)

EXPECTED: dict[str, tuple[str, ...]] = {
    "debian": _COMMON + DEBIAN_SECURITY + DEBIAN_UPDATES + TRUST_APT,
    "el": _COMMON + EL_SECURITY + EL_UPDATES + TRUST_DNF,
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
