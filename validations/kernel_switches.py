"""Kernel command-line switches that turn a protection of the kernel off: the command-line half
of `system-sysctl` (the kernel's parameters, set at boot instead of through sysctl).

CPU vulnerability mitigations (`mitigations=off` and each per-issue switch set to off),
page-table isolation, kernel address-space randomisation, SMEP/SMAP. Read from the running
kernel (/proc/cmdline) and from every place that makes the next boot's command line
(validations/console.py walks GRUB's defaults, grub.cfg, grubenv, loader entries and
/etc/kernel/cmdline with this judge). Words from the kernel's
Documentation/admin-guide/kernel-parameters.txt. The mandatory access control and audit
switches (`apparmor=0`, `selinux=0`, `enforcing=0`, `audit=0`) are judged here too: on the
running kernel `system-apparmor` and the EL SELinux checks see their effect as well, but only
this judge reads the command line the next boot will get (a grub.d file waits for the next
`update-grub`, which the next kernel update runs).
"""

from __future__ import annotations

from validations.console import cmdline_words

# Switches that take no value and switch something off.
BARE = {
    "nopti": "page-table isolation off (Meltdown)",
    "nospectre_v1": "Spectre v1 mitigations off",
    "nospectre_v2": "Spectre v2 mitigations off",
    "nospectre_bhb": "Spectre-BHB mitigations off",
    "nospec_store_bypass_disable": "Speculative Store Bypass mitigation off",
    "nokaslr": "kernel address-space layout randomisation off",
    "nosmap": "SMAP off (the kernel reads user memory freely)",
    "nosmep": "SMEP off (the kernel runs user pages)",
    "noibrs": "IBRS off",
    "noibpb": "IBPB off",
}
# Keys whose value `off` (or the given values) switch a mitigation off.
OFF_VALUES = {
    "mitigations": {"off"},
    "pti": {"off"},
    "kpti": {"0", "off"},
    "spectre_v2": {"off"},
    "spectre_v2_user": {"off"},
    "spectre_bhi": {"off"},
    "spec_store_bypass_disable": {"off"},
    "l1tf": {"off"},
    "mds": {"off"},
    "tsx_async_abort": {"off"},
    "mmio_stale_data": {"off"},
    "retbleed": {"off"},
    "srbds": {"off"},
    "gather_data_sampling": {"off"},
    "reg_file_data_sampling": {"off"},
    "spec_rstack_overflow": {"off"},
    "l1d_flush": {"off"},
    "kaslr": {"off", "0"},
}


# Mandatory access control and the audit subsystem, switched off at boot.
MAC_OFF = {
    "apparmor": {"0"},  # apparmor_enabled_setup: kstrtoul, so "off" is ignored
    "selinux": {"0"},
    "enforcing": {"0"},
    "audit": {"0", "off"},
}


def weakening_findings(text: str, where: str, _recovery_entry: bool = False) -> list[str]:
    """Switches in one kernel command line that turn a kernel protection off (a recovery entry
    is judged like any other: it boots the same kernel)."""
    found = []
    for word in cmdline_words(text):
        key, eq, value = word.partition("=")
        if not eq and key in BARE:
            found.append(f"{where}: {word} ({BARE[key]})")
        elif eq and value.lower() in OFF_VALUES.get(key, set()):
            found.append(f"{where}: {word} (a CPU or kernel protection switched off)")
        elif eq and value.lower() in MAC_OFF.get(key, set()):
            found.append(f"{where}: {word} (mandatory access control or audit switched off)")
    return found
