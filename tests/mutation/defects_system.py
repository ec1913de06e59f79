"""Mutation rows for the system's own state: kernel parameters, AppArmor, per-machine state,
and package sources the clone cannot reach (an image defect, not infrastructure)."""

from __future__ import annotations

import os

from defects import Defect, GoodVariant, _contains, _exists
from defects_persistence import _cmdline_has, _kernel_cmdline
from diskedit import DiskEditor

# -- kernel parameters ---------------------------------------------------------------------------


def _late_kptr(d: DiskEditor) -> None:
    d.write("/etc/sysctl.d/99-zz-debugging.conf", "# for perf\nkernel.kptr_restrict = 0\n")


def _interface_redirects(d: DiskEditor) -> None:
    d.write(
        "/usr/lib/sysctl.d/99-router.conf",
        "# a router image's leftover\nnet.ipv4.conf.e*.send_redirects = 1\n",
    )


def _unit_ipv6_forwarding(d: DiskEditor) -> None:
    d.enable_unit(
        "enable-forwarding.service",
        "[Unit]\nDescription=turn the clone into a router\nAfter=systemd-sysctl.service\n"
        "[Service]\nType=oneshot\nExecStart=/sbin/sysctl -w net.ipv6.conf.all.forwarding=1\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )


def _ptrace_in_sysctl_conf(d: DiskEditor) -> None:
    d.append("/etc/sysctl.conf", "\n# let debuggers attach\nkernel.yama.ptrace_scope=0\n")


def _stricter_sysctl(d: DiskEditor) -> None:
    d.write(
        "/etc/sysctl.d/95-site-stricter.conf",
        "kernel.kptr_restrict = 2\nkernel.yama.ptrace_scope = 2\nkernel.perf_event_paranoid = 3\n",
    )


# -- AppArmor --------------------------------------------------------------------------------------------


def _mask_apparmor(d: DiskEditor) -> None:
    d.symlink("/etc/systemd/system/apparmor.service", "/dev/null")


def _first_profile(d: DiskEditor) -> str:
    reader = d.reader()
    names = [
        n
        for n in reader.listdir("/etc/apparmor.d")
        if reader.stat(f"/etc/apparmor.d/{n}").is_file and not n.startswith(".")
    ]
    assert names, "the image ships no AppArmor profile"
    return sorted(names)[0]


def _disable_profile(d: DiskEditor) -> None:
    name = _first_profile(d)
    d.mkdir("/etc/apparmor.d/disable")
    d.symlink(f"/etc/apparmor.d/disable/{name}", f"/etc/apparmor.d/{name}")


def _complain_profile(d: DiskEditor) -> None:
    name = _first_profile(d)
    d.mkdir("/etc/apparmor.d/force-complain")
    d.symlink(f"/etc/apparmor.d/force-complain/{name}", f"/etc/apparmor.d/{name}")


def _complain_in_file(d: DiskEditor) -> None:
    """What aa-complain does: the flag written into the profile file itself."""
    path = "/etc/apparmor.d/lsb_release"
    text = d.read_text(path)
    assert "profile lsb_release" in text, "lsb_release's profile is not in the image"
    d.write(path, text.replace("profile lsb_release ", "profile lsb_release flags=(complain) ", 1))


def _profile_deleted(d: DiskEditor) -> None:
    d.rm("/etc/apparmor.d/nvidia_modprobe")


def _extra_enforced_profile(d: DiskEditor) -> None:
    d.write(
        "/etc/apparmor.d/usr.local.bin.site-report",
        "abi <abi/3.0>,\ninclude <tunables/global>\n"
        "profile site-report /usr/local/bin/site-report {\n"
        "  include <abstractions/base>\n  /etc/hostname r,\n}\n",
    )


# -- per-machine state -------------------------------------------------------------------------------


def _random_seed(d: DiskEditor) -> None:
    d.write("/var/lib/systemd/random-seed", os.urandom(512), mode=0o600)


def _keytab(d: DiskEditor) -> None:
    d.write("/etc/krb5.keytab", b"\x05\x02" + os.urandom(62), mode=0o600)


def _timesync_clock(d: DiskEditor) -> None:
    d.write("/var/lib/systemd/timesync/clock", b"", mode=0o644)


# -- package sources -------------------------------------------------------------------------------


def _source_typo(d: DiskEditor) -> None:
    text = d.read_text("/etc/apt/sources.list")
    assert "-updates" in text, "the image's sources.list has no -updates suite"
    d.write("/etc/apt/sources.list", text.replace("-updates", "-updtaes"))


def _unreachable_proxy(d: DiskEditor) -> None:
    d.write(
        "/etc/apt/apt.conf.d/80proxy",
        'Acquire::http::Proxy "http://192.0.2.80:3128";\nAcquire::http::Timeout "10";\n',
    )


def _backports_source(d: DiskEditor) -> None:
    d.write(
        "/etc/apt/sources.list.d/backports.list",
        "deb http://deb.debian.org/debian bookworm-backports main\n",
    )


def _salt_minion(d: DiskEditor) -> None:
    d.write("/etc/salt/minion_id", "golden-build-01\n")
    d.write("/etc/salt/pki/minion/minion.pem", "not a real key\n", mode=0o400)


SYSTEM_DEFECTS: tuple[Defect, ...] = (
    Defect(
        "sysctl-late-file-undoes-hardening",
        "system",
        "a later sysctl.d file sets kernel.kptr_restrict = 0 (a key only the template's own "
        "file names)",
        _late_kptr,
        ("system-sysctl",),
        _exists("/etc/sysctl.d/99-zz-debugging.conf"),
        ci=True,
    ),
    Defect(
        "sysctl-interface-redirects",
        "system",
        "send_redirects on for every e* interface from /usr/lib/sysctl.d (the `all` value stays 0)",
        _interface_redirects,
        ("system-sysctl",),
        _exists("/usr/lib/sysctl.d/99-router.conf"),
    ),
    Defect(
        "sysctl-unit-ipv6-forwarding",
        "system",
        "a boot unit runs sysctl -w net.ipv6.conf.all.forwarding=1",
        _unit_ipv6_forwarding,
        ("system-sysctl",),
        _exists("/etc/systemd/system/multi-user.target.wants/enable-forwarding.service"),
    ),
    Defect(
        "sysctl-mmap-min-addr-zero",
        "system",
        "/usr/lib/sysctl.d lets user space map page zero (vm.mmap_min_addr = 0), a key the "
        "template's file never names",
        lambda d: d.write("/usr/lib/sysctl.d/60-zz-wine.conf", "vm.mmap_min_addr = 0\n"),
        ("system-sysctl",),
        _exists("/usr/lib/sysctl.d/60-zz-wine.conf"),
    ),
    Defect(
        "sysctl-unit-perf-bpf-open",
        "system",
        "a boot unit opens perf events and eBPF to every user (sysctl -w ...=-1 / =0)",
        lambda d: d.enable_unit(
            "zz-profiling.service",
            "[Unit]\nDescription=profiling\nAfter=systemd-sysctl.service\n[Service]\n"
            "Type=oneshot\nExecStart=/usr/sbin/sysctl -w kernel.perf_event_paranoid=-1 "
            "kernel.unprivileged_bpf_disabled=0\n[Install]\nWantedBy=multi-user.target\n",
        ),
        ("system-sysctl",),
        _exists("/etc/systemd/system/multi-user.target.wants/zz-profiling.service"),
    ),
    Defect(
        "apparmor-service-masked",
        "system",
        "apparmor.service masked: no profile is loaded at boot",
        _mask_apparmor,
        ("system-apparmor",),
        lambda d: d.reader().lexists("/etc/systemd/system/apparmor.service"),
        ci=True,
    ),
    Defect(
        "apparmor-profile-disabled",
        "system",
        "a shipped profile linked into /etc/apparmor.d/disable",
        _disable_profile,
        ("system-apparmor",),
        _exists("/etc/apparmor.d/disable"),
    ),
    Defect(
        "apparmor-profile-complain",
        "system",
        "a shipped profile forced into complain mode",
        _complain_profile,
        ("system-apparmor",),
        _exists("/etc/apparmor.d/force-complain"),
    ),
    Defect(
        "apparmor-complain-in-profile",
        "system",
        "flags=(complain) written into a shipped profile (what aa-complain does)",
        _complain_in_file,
        ("system-apparmor",),
        _contains("/etc/apparmor.d/lsb_release", "flags=(complain)"),
    ),
    Defect(
        "apparmor-profile-deleted",
        "system",
        "a shipped profile file deleted",
        _profile_deleted,
        ("system-apparmor",),
        lambda d: not d.exists("/etc/apparmor.d/nvidia_modprobe"),
    ),
    Defect(
        "sysctl-conf-ptrace",
        "system",
        "kernel.yama.ptrace_scope=0 appended to /etc/sysctl.conf",
        _ptrace_in_sysctl_conf,
        ("system-sysctl",),
        _contains("/etc/sysctl.conf", "ptrace_scope=0"),
    ),
    Defect(
        "salt-minion-identity-shipped",
        "hygiene",
        "a Salt minion's id and private key left from the build host's enrolment",
        _salt_minion,
        ("hygiene-machine-state",),
        _exists("/etc/salt/minion_id"),
    ),
    Defect(
        "random-seed-shipped",
        "hygiene",
        "/var/lib/systemd/random-seed left in the image",
        _random_seed,
        ("hygiene-machine-state",),
        _exists("/var/lib/systemd/random-seed"),
    ),
    Defect(
        "host-keytab-shipped",
        "hygiene",
        "a Kerberos host keytab in /etc/krb5.keytab",
        _keytab,
        ("hygiene-machine-state",),
        _exists("/etc/krb5.keytab"),
    ),
    Defect(
        "apt-source-typo",
        "system",
        "a misspelt suite in sources.list: the server answers 404",
        _source_typo,
        ("system-package-sources",),
        _contains("/etc/apt/sources.list", "-updtaes"),
    ),
    Defect(
        "apt-proxy-unreachable",
        "system",
        "apt sent through a proxy that does not exist",
        _unreachable_proxy,
        ("system-package-sources",),
        _exists("/etc/apt/apt.conf.d/80proxy"),
        ci=True,
    ),
    # kernel protections switched off on the command line (system-sysctl)
    Defect(
        "esp-cmdline-mitigations-off",
        "system",
        "the ESP's GRUB boots the kernel with mitigations=off (seen in /proc/cmdline)",
        _kernel_cmdline("mitigations=off"),
        ("system-sysctl",),
        _cmdline_has("mitigations=off"),
    ),
    Defect(
        "grub-default-nokaslr-nopti",
        "system",
        "a grub.d file adds nokaslr nopti to GRUB_CMDLINE_LINUX (the next kernel update's boot)",
        lambda d: d.write(
            "/etc/default/grub.d/60-perf.cfg",
            'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX nokaslr nopti"\n',
        ),
        ("system-sysctl",),
        _exists("/etc/default/grub.d/60-perf.cfg"),
    ),
    Defect(
        "grub-d-apparmor-audit-off",
        "system",
        "a grub.d file adds apparmor=0 audit=0 to GRUB_CMDLINE_LINUX_DEFAULT: AppArmor and the "
        "audit subsystem are off from the next update-grub (the next kernel update) on",
        lambda d: d.write(
            "/etc/default/grub.d/99-debug.cfg",
            'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT apparmor=0 audit=0"\n',
        ),
        ("system-sysctl",),
        _exists("/etc/default/grub.d/99-debug.cfg"),
    ),
    Defect(
        "grub-default-audit-off",
        "system",
        "/etc/default/grub written with audit=off in GRUB_CMDLINE_LINUX (the next update-grub)",
        lambda d: d.write(
            "/etc/default/grub",
            'GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'
            'GRUB_CMDLINE_LINUX="console=ttyS0 audit=off"\n',
        ),
        ("system-sysctl",),
        _contains("/etc/default/grub", "audit=off"),
    ),
    Defect(
        "kernel-cmdline-file-spectre-off",
        "system",
        "/etc/kernel/cmdline (kernel-install) turns the Spectre v2 and SSB mitigations off",
        lambda d: d.write(
            "/etc/kernel/cmdline", "ro quiet spectre_v2=off spec_store_bypass_disable=off\n"
        ),
        ("system-sysctl",),
        _contains("/etc/kernel/cmdline", "spectre_v2=off"),
    ),
    # root's home open to others (system-file-modes)
    Defect(
        "root-home-world-readable",
        "system",
        "/root chmod 0755: every user reads root's files",
        lambda d: d.chmod("/root", 0o755),
        ("system-file-modes",),
        lambda d: d.reader().stat("/root").perms == 0o755,
    ),
    Defect(
        "root-home-group-staff",
        "system",
        "/root given to group staff (GID 50), mode 0750: its members read root's files",
        lambda d: d.chown("/root", 0, 50, 0o750),
        ("system-file-modes",),
        lambda d: d.reader().stat("/root").gid == 50,
    ),
    # a boot systemd does not call clean (system-boot-clean)
    Defect(
        "enabled-service-fails",
        "system",
        "an enabled site-agent.service whose program exits 1 at every boot: systemd degraded",
        lambda d: d.enable_unit(
            "site-agent.service",
            "[Unit]\nDescription=site agent\n[Service]\nType=oneshot\nExecStart=/usr/bin/false\n"
            "[Install]\nWantedBy=multi-user.target\n",
        ),
        ("system-boot-clean",),
        _exists("/etc/systemd/system/site-agent.service"),
    ),
    Defect(
        "fstab-mount-fails",
        "system",
        "an /etc/fstab line (nofail) whose options tmpfs refuses: mnt-scratch.mount fails at "
        "every boot",
        lambda d: (
            d.append("/etc/fstab", "tmpfs /mnt/scratch tmpfs size=bogus,nofail 0 0\n")
            if d.exists("/etc/fstab")
            else d.write("/etc/fstab", "tmpfs /mnt/scratch tmpfs size=bogus,nofail 0 0\n")
        ),
        ("system-boot-clean",),
        _contains("/etc/fstab", "size=bogus"),
    ),
    # logs that do not last (system-logging)
    Defect(
        "journald-storage-volatile",
        "system",
        "a journald drop-in keeps the journal in /run only: every log is gone at the next reboot",
        lambda d: d.write(
            "/etc/systemd/journald.conf.d/50-ram.conf", "[Journal]\nStorage=volatile\n"
        ),
        ("system-logging",),
        _exists("/etc/systemd/journald.conf.d/50-ram.conf"),
    ),
    Defect(
        "journald-storage-none",
        "system",
        "Storage=none appended to journald.conf itself: journald keeps nothing, not even in RAM",
        lambda d: d.append("/etc/systemd/journald.conf", "Storage=none\n"),
        ("system-logging",),
        _contains("/etc/systemd/journald.conf", "Storage=none"),
    ),
    Defect(
        "journal-folder-removed",
        "system",
        "/var/log/journal removed: Storage=auto (the default) then keeps the journal in RAM",
        lambda d: d.rmdir("/var/log/journal"),
        ("system-logging",),
        lambda d: not d.exists("/var/log/journal"),
    ),
)

SYSTEM_GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "service-skipped-by-condition",
        "an enabled site service with ConditionPathExists= on a file the clone does not have",
        "a unit its own condition skips did not fail: the boot is clean",
        lambda d: d.enable_unit(
            "site-report.service",
            "[Unit]\nDescription=site report\nConditionPathExists=/etc/site/report.conf\n"
            "[Service]\nType=oneshot\nExecStart=/usr/bin/false\n"
            "[Install]\nWantedBy=multi-user.target\n",
        ),
        _exists("/etc/systemd/system/site-report.service"),
    ),
    GoodVariant(
        "journald-persistent-capped",
        "a journald drop-in: Storage=persistent, SystemMaxUse=200M, Compress=yes",
        "logs kept on disk, however their size is capped, pass",
        lambda d: d.write(
            "/etc/systemd/journald.conf.d/60-site.conf",
            "[Journal]\nStorage=persistent\nSystemMaxUse=200M\nCompress=yes\n",
        ),
        _exists("/etc/systemd/journald.conf.d/60-site.conf"),
    ),
    GoodVariant(
        "sysctl-stricter-than-template",
        "kptr_restrict 2, ptrace_scope 2, perf_event_paranoid 3",
        "a value stricter than the template's passes; only weaker ones fail",
        _stricter_sysctl,
        _exists("/etc/sysctl.d/95-site-stricter.conf"),
    ),
    GoodVariant(
        "apparmor-extra-profile",
        "a site profile, enforced, beside the shipped ones",
        "more confinement is always allowed",
        _extra_enforced_profile,
        _exists("/etc/apparmor.d/usr.local.bin.site-report"),
    ),
    GoodVariant(
        "timesync-clock-file",
        "systemd-timesyncd's clock file (a timestamp, not a secret)",
        "state that identifies nothing may ship",
        _timesync_clock,
        _exists("/var/lib/systemd/timesync/clock"),
    ),
    GoodVariant(
        "apt-backports-source",
        "bookworm-backports added in sources.list.d",
        "more sources are fine when the clone reaches them and they are signed",
        _backports_source,
        _exists("/etc/apt/sources.list.d/backports.list"),
    ),
    GoodVariant(
        "ipv6-disabled-at-boot",
        "the ESP's GRUB boots the kernel with ipv6.disable=1 (no net.ipv6 key exists)",
        "a kernel without IPv6 holds every IPv6 parameter at its strictest; IPv4's still count",
        _kernel_cmdline("ipv6.disable=1"),
        _cmdline_has("ipv6.disable=1"),
    ),
    GoodVariant(
        "kernel-cmdline-hardening",
        "GRUB_CMDLINE_LINUX with slab_nomerge, init_on_alloc=1, pti=on, mitigations=auto,nosmt",
        "switches that add protection pass; only those that turn one off fail",
        lambda d: d.write(
            "/etc/default/grub.d/40-hardening.cfg",
            'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX slab_nomerge init_on_alloc=1 pti=on '
            'mitigations=auto,nosmt"\n',
        ),
        _exists("/etc/default/grub.d/40-hardening.cfg"),
    ),
    GoodVariant(
        "root-home-0750",
        "/root mode 0750, group root",
        "root's group has no member but root (accounts-identities): 0750 is as closed as 0700",
        lambda d: d.chmod("/root", 0o750),
        lambda d: d.reader().stat("/root").perms == 0o750,
    ),
)
