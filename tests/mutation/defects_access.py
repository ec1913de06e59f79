"""Mutation rows for who gets in and who is root: sshd started another way, Match Group,
algorithms, includes; the account databases; sudo's policy. Each mechanism has at least two
broken images (different files, different spellings) and a good variant that must pass."""

from __future__ import annotations

import re
from collections.abc import Callable

from defects import Defect, GoodVariant, _contains, _exists
from diskedit import DiskEditor

HASH = "$6$mutation$" + "q" * 86  # crypt-shaped, not a real password's


def _rows(d: DiskEditor, path: str, name: str, change: Callable[[list[str]], list[str]]) -> None:
    """Rewrite one account row of a colon file, keeping the file's owner and mode."""
    st = d.reader().stat(path)
    out, found = [], False
    for line in d.read_text(path).splitlines():
        fields = line.split(":")
        if fields and fields[0] == name:
            fields, found = change(fields), True
        out.append(":".join(fields))
    assert found, f"{name} is not in {path}"
    d.write(path, "\n".join(out) + "\n", st.perms, st.uid, st.gid)


def _set(index: int, value: str) -> Callable[[list[str]], list[str]]:
    def change(fields: list[str]) -> list[str]:
        fields[index] = value
        return fields

    return change


def _append_row(d: DiskEditor, path: str, row: str) -> None:
    d.append(path, row if row.endswith("\n") else row + "\n")


def _account(d: DiskEditor, passwd: str, group: str | None = None) -> None:
    """Add an account (shadow locked) and, when given, its group."""
    _append_row(d, "/etc/passwd", passwd)
    name = passwd.split(":", maxsplit=1)[0]
    _append_row(d, "/etc/shadow", f"{name}:!:19000:0:99999:7:::")
    if group:
        _append_row(d, "/etc/group", group)
        _append_row(d, "/etc/gshadow", f"{group.split(':')[0]}:!::")


# -- sshd started another way ---------------------------------------------------------------------


def _sshd_opts_env(d: DiskEditor) -> None:
    d.write(
        "/etc/default/ssh",
        "# Options to pass to sshd\nSSHD_OPTS='-o PasswordAuthentication=yes'\n",
    )


ALT_CONFIG = (
    "# a 'maintenance' configuration\nPermitRootLogin yes\n"
    "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n"
    "AcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
)


def _sshd_unit_alt_config(d: DiskEditor) -> None:
    d.write("/etc/ssh/sshd_config.maint", ALT_CONFIG, mode=0o600)
    d.write(
        "/etc/systemd/system/ssh.service.d/override.conf",
        "[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -f /etc/ssh/sshd_config.maint\n",
    )


def _second_sshd(d: DiskEditor) -> None:
    d.enable_unit(
        "sshd-debug.service",
        "[Unit]\nDescription=a second sshd for debugging\nAfter=network.target\n"
        "[Service]\nExecStartPre=/bin/mkdir -p /run/sshd\n"
        "ExecStart=/usr/sbin/sshd -D -p 2222 -o PermitRootLogin=yes\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )


# -- Match Group, includes, algorithms --------------------------------------------------------------


def _match_group_empty(d: DiskEditor) -> None:
    d.write(
        "/etc/ssh/sshd_config.d/20-admins.conf",
        "# staff may still use passwords\nMatch Group staff\n    PasswordAuthentication yes\n",
        mode=0o600,
    )


def _match_group_primary(d: DiskEditor) -> None:
    d.append(
        "/etc/ssh/sshd_config",
        "\nMatch Group www-data\n    X11Forwarding yes\n    AllowAgentForwarding yes\n",
    )


def _include_outside(d: DiskEditor) -> None:
    d.write(
        "/usr/local/etc/ssh/lan.conf",
        "Match Address 192.168.0.0/16\n    PermitRootLogin yes\n",
        mode=0o600,
    )
    d.append("/etc/ssh/sshd_config", "\nInclude /usr/local/etc/ssh/*.conf\n")


def _hostkey_sha1(d: DiskEditor) -> None:
    d.write(
        "/etc/ssh/sshd_config.d/30-legacy-clients.conf",
        "HostKeyAlgorithms +ssh-rsa\n",
        mode=0o600,
    )


def _pubkey_sha1_old_spelling(d: DiskEditor) -> None:
    d.append("/etc/ssh/sshd_config", "\nPubkeyAcceptedKeyTypes +ssh-rsa\n")


# -- accounts -----------------------------------------------------------------------------------------


def _passwd_hash(d: DiskEditor) -> None:
    _rows(d, "/etc/passwd", "root", _set(1, HASH))


def _passwd_empty(d: DiskEditor) -> None:
    _rows(d, "/etc/passwd", "games", _set(1, ""))


def _group_password(d: DiskEditor) -> None:
    _rows(d, "/etc/gshadow", "sudo", _set(1, HASH))


def _second_root(d: DiskEditor) -> None:
    _account(d, "toor:x:0:0:maintenance:/root:/bin/bash")


def _shared_uid(d: DiskEditor) -> None:
    _account(d, "webdeploy:x:33:33:deploys the site:/var/www:/usr/sbin/nologin")


def _system_shell(d: DiskEditor) -> None:
    _rows(d, "/etc/passwd", "www-data", _set(6, "/bin/bash"))


def _system_empty_shell(d: DiskEditor) -> None:
    _account(d, "svcmon:x:990:990:monitoring:/var/lib/svcmon:", "svcmon:x:990:")


def _regular_account(d: DiskEditor) -> None:
    _account(d, "ops:x:1001:1001:operations:/nonexistent:/bin/bash", "ops:x:1001:")


def _orphan_owner(d: DiskEditor) -> None:
    d.write("/opt/vendor-agent/run.sh", "#!/bin/sh\nexit 0\n", mode=0o755, uid=4242, gid=0)


def _orphan_group(d: DiskEditor) -> None:
    d.mkdir("/var/lib/leftover-cache", mode=0o750, uid=0, gid=5555)


# -- sudo ------------------------------------------------------------------------------------------------


def _sudo_include_outside(d: DiskEditor) -> None:
    d.write("/etc/sudo-extra", "deploy ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)
    d.append("/etc/sudoers", "@include /etc/sudo-extra\n")


def _sudo_defaults_noauth(d: DiskEditor) -> None:
    d.write("/etc/sudoers.d/10-defaults", "Defaults:%sudo !authenticate\n", mode=0o440)


def _sudo_group_nopasswd(d: DiskEditor) -> None:
    d.write("/etc/sudoers.d/ops", "%adm ALL=(ALL:ALL) NOPASSWD: ALL\n", mode=0o440)


def _sudo_conf_alternate_file(d: DiskEditor) -> None:
    d.write("/etc/sudoers.local", "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n"
            "%sudo ALL=(ALL:ALL) ALL\nbackup ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)  # fmt: skip
    d.write("/etc/sudo.conf", "Plugin sudoers_policy sudoers.so sudoers_file=/etc/sudoers.local\n")


def _root_group_member(d: DiskEditor) -> None:
    _rows(d, "/etc/group", "disk", _set(3, "www-data"))


def _kerberos_password(d: DiskEditor) -> None:
    d.write("/etc/ssh/sshd_config.d/30-ad.conf", "KerberosAuthentication yes\n", mode=0o600)


def _sudo_env_keep(d: DiskEditor) -> None:
    d.append("/etc/sudoers", 'Defaults env_keep += "LD_PRELOAD LD_LIBRARY_PATH"\n')


ACCESS_DEFECTS: tuple[Defect, ...] = (
    Defect(
        "sshd-kerberos-password",
        "ssh",
        "KerberosAuthentication yes: the password checked against a KDC",
        _kerberos_password,
        ("ssh-password-auth",),
        _exists("/etc/ssh/sshd_config.d/30-ad.conf"),
    ),
    Defect(
        "root-equivalent-group-member",
        "accounts",
        "www-data made a member of the disk group (raw access to the root disk)",
        _root_group_member,
        ("accounts-identities",),
        _contains("/etc/group", "disk:x:6:www-data"),
    ),
    Defect(
        "sudo-conf-alternate-sudoers",
        "sudo",
        "/etc/sudo.conf points the sudoers plugin at another file that grants NOPASSWD",
        _sudo_conf_alternate_file,
        ("sudo-policy",),
        _exists("/etc/sudoers.local"),
    ),
    Defect(
        "sshd-opts-environment",
        "ssh",
        "/etc/default/ssh hands sshd -o PasswordAuthentication=yes",
        _sshd_opts_env,
        ("ssh-password-auth",),
        _contains("/etc/default/ssh", "PasswordAuthentication=yes"),
        ci=True,
    ),
    Defect(
        "sshd-unit-alternate-config",
        "ssh",
        "a unit drop-in starts sshd -f another file that permits root",
        _sshd_unit_alt_config,
        ("ssh-root-login",),
        _exists("/etc/systemd/system/ssh.service.d/override.conf"),
    ),
    Defect(
        "sshd-second-daemon",
        "ssh",
        "a second sshd unit on port 2222 with -o PermitRootLogin=yes",
        _second_sshd,
        ("ssh-root-login", "system-listeners"),
        _exists("/etc/systemd/system/multi-user.target.wants/sshd-debug.service"),
    ),
    Defect(
        "sshd-match-group-no-member",
        "ssh",
        "passwords inside Match Group staff, a group with no member (the seed's user is not in it)",
        _match_group_empty,
        ("ssh-password-auth",),
        _exists("/etc/ssh/sshd_config.d/20-admins.conf"),
    ),
    Defect(
        "sshd-match-group-primary",
        "ssh",
        "forwarding inside Match Group www-data, whose only member has it as primary group",
        _match_group_primary,
        ("ssh-session-limits",),
        _contains("/etc/ssh/sshd_config", "Match Group www-data"),
    ),
    Defect(
        "sshd-include-outside-etc-ssh",
        "ssh",
        "an Include of /usr/local/etc/ssh/*.conf with a Match block that permits root",
        _include_outside,
        ("ssh-root-login",),
        _exists("/usr/local/etc/ssh/lan.conf"),
    ),
    Defect(
        "sshd-hostkey-sha1",
        "ssh",
        "HostKeyAlgorithms +ssh-rsa (SHA-1 signatures) in a drop-in",
        _hostkey_sha1,
        ("ssh-crypto",),
        _exists("/etc/ssh/sshd_config.d/30-legacy-clients.conf"),
    ),
    Defect(
        "sshd-pubkey-sha1-old-keyword",
        "ssh",
        "PubkeyAcceptedKeyTypes +ssh-rsa (the pre-8.5 keyword) in sshd_config",
        _pubkey_sha1_old_spelling,
        ("ssh-crypto",),
        _contains("/etc/ssh/sshd_config", "PubkeyAcceptedKeyTypes"),
    ),
    Defect(
        "passwd-field-hash",
        "accounts",
        "root's password hash in /etc/passwd's own field",
        _passwd_hash,
        # a hash where no hash belongs is also what the credential scanner looks for
        ("system-shadow-locked", "hygiene-credentials"),
        _contains("/etc/passwd", "root:$6$mutation$"),
        ci=True,
    ),
    Defect(
        "passwd-field-empty",
        "accounts",
        "games has an empty password field in /etc/passwd (no password at all)",
        _passwd_empty,
        ("system-shadow-locked",),
        _contains("/etc/passwd", "games::"),
    ),
    Defect(
        "group-password",
        "accounts",
        "a password on the sudo group in /etc/gshadow (newgrp sudo)",
        _group_password,
        ("system-shadow-locked",),
        _contains("/etc/gshadow", "sudo:$6$mutation$"),
    ),
    Defect(
        "second-uid-zero",
        "accounts",
        "toor, a second account with UID 0 and a shell",
        _second_root,
        ("accounts-identities", "accounts-login"),
        _contains("/etc/passwd", "toor:x:0:0"),
    ),
    Defect(
        "shared-uid",
        "accounts",
        "webdeploy shares UID 33 with www-data",
        _shared_uid,
        ("accounts-identities",),
        _contains("/etc/passwd", "webdeploy:x:33"),
    ),
    Defect(
        "system-account-login-shell",
        "accounts",
        "www-data given /bin/bash",
        _system_shell,
        ("accounts-login",),
        _contains("/etc/passwd", "/var/www:/bin/bash"),
    ),
    Defect(
        "system-account-empty-shell",
        "accounts",
        "a system account whose empty shell field means /bin/sh",
        _system_empty_shell,
        ("accounts-login",),
        _contains("/etc/passwd", "svcmon:x:990"),
    ),
    Defect(
        "undocumented-regular-account",
        "accounts",
        "a regular account ops (UID 1001) with a shell and no home",
        _regular_account,
        ("accounts-login", "hygiene-build-user"),
        _contains("/etc/passwd", "ops:x:1001"),
    ),
    Defect(
        "file-owner-unknown",
        "accounts",
        "/opt/vendor-agent/run.sh owned by UID 4242, which no account has",
        _orphan_owner,
        ("accounts-file-owners",),
        _exists("/opt/vendor-agent/run.sh"),
    ),
    Defect(
        "file-group-unknown",
        "accounts",
        "/var/lib/leftover-cache owned by GID 5555, which no group has",
        _orphan_group,
        ("accounts-file-owners",),
        _exists("/var/lib/leftover-cache"),
    ),
    Defect(
        "sudo-include-outside-sudoers-d",
        "sudo",
        "@include /etc/sudo-extra grants deploy NOPASSWD ALL",
        _sudo_include_outside,
        ("sudo-policy",),
        _exists("/etc/sudo-extra"),
        ci=True,
    ),
    Defect(
        "sudo-defaults-no-authentication",
        "sudo",
        "Defaults:%sudo !authenticate in a drop-in of Defaults only",
        _sudo_defaults_noauth,
        ("sudo-policy",),
        _exists("/etc/sudoers.d/10-defaults"),
    ),
    Defect(
        "sudo-group-nopasswd",
        "sudo",
        "%adm ALL=(ALL:ALL) NOPASSWD: ALL in a drop-in",
        _sudo_group_nopasswd,
        ("sudo-policy", "hygiene-sudoers"),
        _exists("/etc/sudoers.d/ops"),
    ),
    Defect(
        "sudo-env-keep-preload",
        "sudo",
        "Defaults env_keep += LD_PRELOAD in /etc/sudoers",
        _sudo_env_keep,
        ("sudo-policy",),
        _contains("/etc/sudoers", "LD_PRELOAD"),
    ),
    Defect(
        "sudo-setenv-for-admins",
        "sudo",
        "a sudoers.d file gives %sudo setenv: whatever they export reaches root (sudo -E)",
        lambda d: d.write("/etc/sudoers.d/20-env", "Defaults:%sudo setenv\n", mode=0o440),
        ("sudo-policy",),
        _exists("/etc/sudoers.d/20-env"),
    ),
    Defect(
        "sudo-setenv-global",
        "sudo",
        "Defaults setenv appended to /etc/sudoers",
        lambda d: d.append("/etc/sudoers", "Defaults\tsetenv\n"),
        ("sudo-policy",),
        _contains("/etc/sudoers", "Defaults\tsetenv"),
    ),
    # the default modes of what users and root create (accounts-umask)
    Defect(
        "umask-000-profile-d",
        "accounts",
        "umask 000 in /etc/profile.d/umask.sh: every login's files writable by everyone",
        lambda d: d.write("/etc/profile.d/umask.sh", "umask 000\n"),
        ("accounts-umask",),
        _exists("/etc/profile.d/umask.sh"),
        ci=True,
    ),
    Defect(
        "pam-umask-session",
        "accounts",
        "pam_umask with umask=0002 added to common-session (every PAM login, sudo included)",
        lambda d: d.append(
            "/etc/pam.d/common-session", "session optional pam_umask.so umask=0002\n"
        ),
        ("accounts-umask",),
        _contains("/etc/pam.d/common-session", "pam_umask.so umask=0002"),
    ),
    Defect(
        "root-profile-umask-002",
        "accounts",
        "umask 002 at the end of /root/.profile: what root makes under sudo -i is group-writable",
        lambda d: d.append("/root/.profile", "umask 002\n"),
        ("accounts-umask",),
        _contains("/root/.profile", "umask 002"),
    ),
    Defect(
        "adduser-dir-mode-0777",
        "accounts",
        "DIR_MODE=0777 in /etc/adduser.conf: the homes adduser makes are world-writable",
        lambda d: d.append("/etc/adduser.conf", "DIR_MODE=0777\n"),
        ("accounts-umask",),
        _contains("/etc/adduser.conf", "DIR_MODE=0777"),
    ),
)


# -- good variants: sound choices the checks must not fail -------------------------------------------


def _sudoers_defaults_only(d: DiskEditor) -> None:
    d.write(
        "/etc/sudoers.d/50-hardening",
        'Defaults use_pty\nDefaults logfile="/var/log/sudo.log"\n',
        mode=0o440,
    )


def _backups_root_0600(d: DiskEditor) -> None:
    for live in ("/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc/group"):
        mode = 0o600 if "shadow" in live else 0o644
        d.write(f"{live}-", d.read_text(live), mode=mode, uid=0, gid=0)


def _sshd_fips(d: DiskEditor) -> None:
    d.write(
        "/etc/ssh/sshd_config.d/00-site-fips.conf",
        "# the site's FIPS-style policy, read before the template's\nLogLevel INFO\n"
        "Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes128-ctr\n"
        "KexAlgorithms ecdh-sha2-nistp384,ecdh-sha2-nistp256,curve25519-sha256\n"
        "MACs hmac-sha2-256,hmac-sha2-512,hmac-sha2-256-etm@openssh.com\n",
        mode=0o600,
    )


def _sshd_mfa_group(d: DiskEditor) -> None:
    _append_row(d, "/etc/group", "mfa-users:x:1500:")
    _append_row(d, "/etc/gshadow", "mfa-users:!::")
    d.write(
        "/etc/ssh/sshd_config.d/40-mfa.conf",
        "# people in mfa-users need a key and a one-time code\nMatch Group mfa-users\n"
        "    AuthenticationMethods publickey,keyboard-interactive\n"
        "    KbdInteractiveAuthentication yes\n",
        mode=0o600,
    )


def _sshd_allow_groups(d: DiskEditor) -> None:
    d.write(
        "/etc/ssh/sshd_config.d/05-access.conf",
        "# CIS 5.1.4: only administrators reach this host over SSH\nAllowGroups sudo\n"
        "DenyUsers root\n",
        mode=0o600,
    )


def _sshd_lynis(d: DiskEditor) -> None:
    d.write(
        "/etc/ssh/sshd_config.d/06-lynis.conf",
        "# Lynis SSH-7408's suggestions\nMaxSessions 2\nMaxAuthTries 3\nAllowTcpForwarding no\n"
        "AllowAgentForwarding no\nClientAliveCountMax 2\nTCPKeepAlive no\nCompression no\n"
        "LogLevel VERBOSE\nX11Forwarding no\n",
        mode=0o600,
    )


def _system_service_account(d: DiskEditor) -> None:
    _account(d, "svcbackup:x:991:991:backups:/var/lib/svcbackup:/usr/sbin/nologin",
             "svcbackup:x:991:")  # fmt: skip
    d.mkdir("/var/lib/svcbackup", mode=0o750, uid=991, gid=991)


def _strict_umask(d: DiskEditor) -> None:
    d.write("/etc/profile.d/50-umask.sh", "umask 027\n")
    defs = re.sub(r"^UMASK\s+\S+", "UMASK\t\t027", d.read_text("/etc/login.defs"), flags=re.M)
    d.write("/etc/login.defs", defs + "HOME_MODE\t0750\n")
    d.write("/etc/sudoers.d/60-umask", "Defaults umask=0077\n", mode=0o440)


ACCESS_GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "sudoers-defaults-only",
        "a sudoers.d file that only sets Defaults use_pty and logfile",
        "Defaults that tighten sudo are sound; only grants and weakening Defaults are findings",
        _sudoers_defaults_only,
        _exists("/etc/sudoers.d/50-hardening"),
        ci=True,
    ),
    GoodVariant(
        "account-backups-root-0600",
        "/etc/shadow- and friends identical to the live files, root:root 0600",
        "a backup no wider than the live file and owned by root is allowed (CIS)",
        _backups_root_0600,
        _exists("/etc/gshadow-"),
    ),
    GoodVariant(
        "sshd-fips-policy",
        "LogLevel INFO, NIST-curve key exchange and non-ETM SHA-2 MACs, no ChaCha20",
        "INFO or VERBOSE logging; FIPS-approved algorithms are strong enough",
        _sshd_fips,
        _exists("/etc/ssh/sshd_config.d/00-site-fips.conf"),
    ),
    GoodVariant(
        "sshd-mfa-for-a-group",
        "keyboard-interactive after a public key (MFA) for members of mfa-users",
        "passwords and one-time codes are allowed as a second factor after a public key",
        _sshd_mfa_group,
        _exists("/etc/ssh/sshd_config.d/40-mfa.conf"),
    ),
    GoodVariant(
        "sshd-allow-groups-sudo",
        "sshd admits the sudo group only (AllowGroups sudo, DenyUsers root), as CIS asks",
        "restricting who may log in is sound; the image's default user (in sudo on Debian's "
        "cloud-init) is the account clones are reached with",
        _sshd_allow_groups,
        _exists("/etc/ssh/sshd_config.d/05-access.conf"),
    ),
    GoodVariant(
        "sshd-lynis-suggestions",
        "sshd as Lynis suggests: MaxSessions 2, MaxAuthTries 3, no TCP or agent forwarding, "
        "ClientAliveCountMax 2, no TCPKeepAlive or compression",
        "tighter session limits are sound; the checks need one connection and two sessions",
        _sshd_lynis,
        _exists("/etc/ssh/sshd_config.d/06-lynis.conf"),
    ),
    GoodVariant(
        "system-service-account",
        "a system account with nologin, a locked password and files of its own",
        "service accounts are fine when they cannot log in",
        _system_service_account,
        _contains("/etc/passwd", "svcbackup:x:991"),
    ),
    GoodVariant(
        "strict-umask-cis",
        "umask 027 for logins (profile.d and login.defs), HOME_MODE 0750, sudo's Defaults "
        "umask=0077",
        "stricter default modes are always sound; only modes that let others write are findings",
        _strict_umask,
        _exists("/etc/profile.d/50-umask.sh"),
    ),
)
