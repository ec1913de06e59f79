"""Defects and good variants of the trust a clone inherits (validations/test_trust.py): apt's
sources, settings and keys, the CA store, the SSH client, the PAM stacks. Each mechanism has
two or more defects in different files and spellings, and one good variant at least.

Imported by tests/mutation/defects.py at its very end (import `defects`, not this module).
Keys and certificates are made when a defect is applied: a real OpenPGP key (gpg, ed25519),
a real X.509 CA (cryptography), so apt and OpenSSL would load them as they are.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable

from defects import Defect, GoodVariant
from defects_persistence import _append, _file, _steps
from diskedit import DiskEditor

from tests.support import castore

# -- helpers ------------------------------------------------------------------------------------------


def _exists(path: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path)


def _contains(path: str, needle: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and needle in d.read_text(path)


def openpgp_key(uid: str, armor: bool = True) -> bytes:
    """A fresh public key (ed25519), armored or as a binary keyring, as apt reads both."""
    with tempfile.TemporaryDirectory() as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback"]
        subprocess.run(
            [*gpg, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [*gpg, *(["--armor"] if armor else []), "--export", uid],
            check=True,
            capture_output=True,
        )
    return out.stdout


def _write(path: str, text: str, mode: int = 0o644) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        d.write(path, text, mode=mode)

    return apply


# -- apt -----------------------------------------------------------------------------------------------

BACKPORTS_TRUSTED = "deb [trusted=yes] http://deb.debian.org/debian bookworm-backports main\n"
PROPOSED_DEB822 = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-proposed-updates
Components: main
Trusted: yes
"""
NESTED_UNAUTHENTICATED = 'APT {\n  Get {\n    AllowUnauthenticated "true";\n  };\n};\n'
PROXY_WITH_PASSWORD = (
    "// the build farm's mirror, through its proxy\nAcquire::http::Proxy::mirror.build.example "
    '"http://builder:Wint3r-2024@proxy.build.example:3128/";\n'
)


def _global_key_asc(d: DiskEditor) -> None:
    d.write("/etc/apt/trusted.gpg.d/vendor-archive.asc", openpgp_key("Vendor <apt@vendor.example>"))


def _legacy_trusted_gpg(d: DiskEditor) -> None:
    """`apt-key add` as older guides say: a binary keyring at Dir::Etc::trusted."""
    d.write("/etc/apt/trusted.gpg", openpgp_key("Tools <apt@tools.example>", armor=False))


def _vendor_signed_by(d: DiskEditor) -> None:
    """A third-party source with its own key, named by signed-by: Debian's backports, with the
    archive keyring copied into /etc/apt/keyrings as a vendor's install guide does it."""
    keyring = d.reader().read_bytes("/usr/share/keyrings/debian-archive-keyring.gpg")
    d.mkdir("/etc/apt/keyrings")
    d.write("/etc/apt/keyrings/backports.gpg", keyring)
    d.write(
        "/etc/apt/sources.list.d/backports.sources",
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n"
        "Components: main\nSigned-By: /etc/apt/keyrings/backports.gpg\n",
    )


# -- the CA store --------------------------------------------------------------------------------------


def _append_to_bundle(d: DiskEditor) -> None:
    d.append(
        "/etc/ssl/certs/ca-certificates.crt",
        castore.certificate("Corp_TLS_Inspection_CA").decode(),
    )


def _local_anchor(d: DiskEditor) -> None:
    """What `cp corp.crt /usr/local/share/ca-certificates && update-ca-certificates` leaves."""
    pem = castore.certificate("Corp_Root_CA_2024")
    d.write("/usr/local/share/ca-certificates/corp-root.crt", pem)
    d.symlink("/etc/ssl/certs/corp-root.pem", "/usr/local/share/ca-certificates/corp-root.crt")
    d.symlink(f"/etc/ssl/certs/{castore.fake_hash('Corp_Root_CA_2024')}.0", "corp-root.pem")
    d.append("/etc/ssl/certs/ca-certificates.crt", pem.decode())


def _planted_hash_link(d: DiskEditor) -> None:
    """A hash link OpenSSL's CApath lookup follows, to a certificate outside the store."""
    d.write("/opt/monitoring/agent-ca.pem", castore.certificate("Monitoring_Agent_CA"))
    d.symlink("/etc/ssl/certs/7f3a9c21.0", "/opt/monitoring/agent-ca.pem")


def _bundle_has(name: str) -> Callable[[DiskEditor], bool]:
    pem = castore.certificate(name)
    return lambda d: pem in d.reader().read_bytes("/etc/ssl/certs/ca-certificates.crt")


def _first_enabled(conf: str) -> str:
    return next(
        line.strip()
        for line in conf.splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    )


def _deselect_one_ca(d: DiskEditor) -> None:
    """`!mozilla/X.crt` in ca-certificates.conf and update-ca-certificates run: the bundle,
    the .pem link and the hash link of that CA gone."""
    conf = d.read_text("/etc/ca-certificates.conf")
    rel = _first_enabled(conf)
    d.write("/etc/ca-certificates.conf", conf.replace(f"\n{rel}\n", f"\n!{rel}\n"))
    pem = d.reader().read_bytes(f"/usr/share/ca-certificates/{rel}")
    bundle = d.reader().read_bytes("/etc/ssl/certs/ca-certificates.crt")
    assert pem in bundle, f"{rel} is not in the bundle as the package ships it"
    d.write("/etc/ssl/certs/ca-certificates.crt", bundle.replace(pem, b""))
    name = rel.rsplit("/", 1)[-1].removesuffix(".crt") + ".pem"
    reader = d.reader()
    for entry in reader.listdir("/etc/ssl/certs"):
        path = f"/etc/ssl/certs/{entry}"
        if entry == name or (reader.lstat(path).is_symlink and reader.readlink(path) == name):
            d.rm(path)


# -- the SSH client ------------------------------------------------------------------------------------

NO_HOST_KEY_CHECK = """\
# lab machines are rebuilt every day
Host *
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
"""
SKEL_AGENT = "Host *.internal\n    ForwardAgent yes\n"
LEGACY_ALGORITHMS = """
# old switches in the machine room
Host legacy-*
    HostKeyAlgorithms +ssh-rsa
    KexAlgorithms +diffie-hellman-group1-sha1
    Ciphers +aes128-cbc
"""
ROOT_PROXY_COMMAND = (
    "Match host backup* user restic\n    ProxyCommand nc -X connect -x 10.0.0.1:3128 %h %p\n"
)
TIGHTENED = """\
# Managed by the site: the client only ever tightens OpenSSH's defaults
Host *
    StrictHostKeyChecking accept-new
    HashKnownHosts yes
    ForwardAgent no
    ForwardX11 no
    Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
    KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256
"""


def _skel_agent(d: DiskEditor) -> None:
    d.mkdir("/etc/skel/.ssh", mode=0o700)
    d.write("/etc/skel/.ssh/config", SKEL_AGENT, mode=0o600)


def _root_proxy_command(d: DiskEditor) -> None:
    d.mkdir("/root/.ssh", mode=0o700)
    d.write("/root/.ssh/config", ROOT_PROXY_COMMAND, mode=0o600)


# -- PAM ------------------------------------------------------------------------------------------------


def _prepend(path: str, line: str) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        st = d.reader().stat(path)
        d.write(path, line + d.read_text(path), st.perms, st.uid, st.gid)

    return apply


def _nullok_back(d: DiskEditor) -> None:
    path = "/etc/pam.d/common-auth"
    st = d.reader().stat(path)
    text = d.read_text(path)
    assert "pam_unix.so" in text and "nullok" not in text
    d.write(path, text.replace("pam_unix.so", "pam_unix.so nullok", 1), st.perms, st.uid, st.gid)


def _edit(path: str, old: str, new: str) -> Callable[[DiskEditor], None]:
    """Replace `old` (which must be there) in a file, keeping its owner and mode."""

    def apply(d: DiskEditor) -> None:
        st = d.reader().stat(path)
        text = d.read_text(path)
        assert old in text, f"{old!r} not in {path}"
        d.write(path, text.replace(old, new), st.perms, st.uid, st.gid)

    return apply


def _faildelay(d: DiskEditor) -> None:
    for service in ("sshd", "login"):
        _prepend(f"/etc/pam.d/{service}", "auth optional pam_faildelay.so delay=4000000\n")(d)


FAILLOCK_COMMON_AUTH = """\
# CIS Debian 12 5.3.3.1: pam_faillock around pam_unix (no nullok)
auth\trequired\t\t\tpam_faillock.so preauth
auth\t[success=1 default=ignore]\tpam_unix.so
auth\t[default=die]\t\t\tpam_faillock.so authfail
auth\tsufficient\t\t\tpam_faillock.so authsucc
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
"""


def _cis_level2(d: DiskEditor) -> None:
    """What a CIS Debian 12 Level 2 remediation changes among the files the checks read."""
    d.write("/etc/pam.d/common-auth", FAILLOCK_COMMON_AUTH)
    d.write("/etc/security/faillock.conf", "deny = 5\nunlock_time = 900\n")
    used = {
        int(x.split(":")[2]) for x in d.read_text("/etc/group").splitlines() if x.count(":") >= 3
    }
    gid = next(g for g in range(990, 900, -1) if g not in used)
    d.append("/etc/group", f"sugroup:x:{gid}:\n")
    d.append("/etc/gshadow", "sugroup:!::\n")
    _prepend("/etc/pam.d/su", "auth required pam_wheel.so use_uid group=sugroup\n")(d)
    d.append("/etc/login.defs", "PASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\nUMASK 027\n")
    d.write("/etc/profile.d/60-cis-umask.sh", "umask 027\nreadonly TMOUT=900 ; export TMOUT\n")
    d.write("/etc/security/limits.d/60-cis-core.conf", "* hard core 0\n")
    d.write("/etc/issue.net", "Authorized uses only. All activity may be monitored and reported.\n")
    d.write(
        "/etc/ssh/sshd_config.d/60-cis.conf",
        "Banner /etc/issue.net\nMaxStartups 10:30:60\nMaxSessions 10\nLoginGraceTime 60\n"
        "ClientAliveInterval 15\nClientAliveCountMax 3\nDisableForwarding yes\n",
        mode=0o600,
    )
    d.write(
        "/etc/systemd/journald.conf.d/60-cis.conf", "[Journal]\nStorage=persistent\nCompress=yes\n"
    )
    for name in ("crontab", "cron.d", "cron.daily", "cron.hourly", "cron.weekly", "cron.monthly"):
        if d.exists(f"/etc/{name}"):
            d.chmod(f"/etc/{name}", 0o600 if name == "crontab" else 0o700)
    # /tmp and /dev/shm without exec, suid or devices (CIS 1.1.2.x)
    d.write(
        "/etc/systemd/system/tmp.mount",
        d.read_text("/usr/share/systemd/tmp.mount").replace(
            "Options=mode=1777,strictatime,nosuid,nodev",
            "Options=mode=1777,strictatime,nosuid,nodev,noexec",
        ),
    )
    d.mkdir("/etc/systemd/system/local-fs.target.wants")
    d.symlink(
        "/etc/systemd/system/local-fs.target.wants/tmp.mount", "/etc/systemd/system/tmp.mount"
    )
    d.append("/etc/fstab", "tmpfs /dev/shm tmpfs defaults,nodev,nosuid,noexec 0 0\n")


TRUST_DEFECTS: tuple[Defect, ...] = (
    Defect(
        "apt-trusted-source-list",
        "trust",
        "a one-line source with [trusted=yes] (bookworm-backports over http)",
        _write("/etc/apt/sources.list.d/backports.list", BACKPORTS_TRUSTED),
        ("trust-apt",),
        _exists("/etc/apt/sources.list.d/backports.list"),
        ci=True,
    ),
    Defect(
        "apt-trusted-source-deb822",
        "trust",
        "a deb822 source with Trusted: yes (bookworm-proposed-updates)",
        _write("/etc/apt/sources.list.d/proposed.sources", PROPOSED_DEB822),
        ("trust-apt",),
        _exists("/etc/apt/sources.list.d/proposed.sources"),
    ),
    Defect(
        "apt-insecure-repositories",
        "trust",
        'Acquire::AllowInsecureRepositories "true" in apt.conf.d',
        _write(
            "/etc/apt/apt.conf.d/99-allow-insecure",
            'Acquire::AllowInsecureRepositories "true";\n',
        ),
        ("trust-apt",),
        _exists("/etc/apt/apt.conf.d/99-allow-insecure"),
    ),
    Defect(
        "apt-unauthenticated-nested",
        "trust",
        "APT::Get::AllowUnauthenticated in /etc/apt/apt.conf, nested-block syntax",
        _write("/etc/apt/apt.conf", NESTED_UNAUTHENTICATED),
        ("trust-apt",),
        _exists("/etc/apt/apt.conf"),
    ),
    Defect(
        "apt-valid-until-off",
        "trust",
        'Acquire::Check-Valid-Until "false" (what mmdebstrap --aptopt used to leave)',
        _write("/etc/apt/apt.conf.d/99mmdebstrap", 'Acquire::Check-Valid-Until "false";\n'),
        ("trust-apt",),
        _exists("/etc/apt/apt.conf.d/99mmdebstrap"),
    ),
    Defect(
        "apt-proxy-password-per-host",
        "trust",
        "a per-host apt proxy whose URL carries a password",
        _write("/etc/apt/apt.conf.d/80-build-proxy", PROXY_WITH_PASSWORD),
        # a password in a URL is also what the credential scanner looks for
        ("trust-apt", "hygiene-credentials"),
        _exists("/etc/apt/apt.conf.d/80-build-proxy"),
    ),
    Defect(
        "apt-global-key-asc",
        "trust",
        "a vendor's key in /etc/apt/trusted.gpg.d (signs for every source)",
        _global_key_asc,
        ("trust-apt",),
        _exists("/etc/apt/trusted.gpg.d/vendor-archive.asc"),
    ),
    Defect(
        "apt-legacy-trusted-gpg",
        "trust",
        "a key in /etc/apt/trusted.gpg, as apt-key add left it",
        _legacy_trusted_gpg,
        ("trust-apt",),
        _exists("/etc/apt/trusted.gpg"),
    ),
    Defect(
        "ca-appended-to-bundle",
        "trust",
        "a CA certificate appended to /etc/ssl/certs/ca-certificates.crt",
        _append_to_bundle,
        ("trust-ca-bundle",),
        _bundle_has("Corp_TLS_Inspection_CA"),
    ),
    Defect(
        "ca-local-anchor",
        "trust",
        "a local CA in /usr/local/share/ca-certificates, installed by update-ca-certificates",
        _local_anchor,
        ("trust-ca-bundle",),
        _exists("/usr/local/share/ca-certificates/corp-root.crt"),
    ),
    Defect(
        "ca-planted-hash-link",
        "trust",
        "an OpenSSL hash link in /etc/ssl/certs to a CA under /opt",
        _planted_hash_link,
        ("trust-ca-bundle",),
        lambda d: d.reader().lexists("/etc/ssl/certs/7f3a9c21.0"),
    ),
    Defect(
        "apt-https-cainfo-override",
        "trust",
        "apt.conf.d points apt's https transport at a CA file under /opt",
        _write(
            "/etc/apt/apt.conf.d/80zz-corp-ca",
            'Acquire::https::CaInfo "/opt/corp/ca.pem";\n',
        ),
        ("trust-apt",),
        _exists("/etc/apt/apt.conf.d/80zz-corp-ca"),
    ),
    # TLS clients told to skip verification or to trust another store (trust-ca-bundle)
    Defect(
        "tls-env-requests-ca-bundle",
        "trust",
        "/etc/profile.d points requests and curl at a CA bundle under /opt",
        _write(
            "/etc/profile.d/zz-corp-ca.sh",
            "export REQUESTS_CA_BUNDLE=/opt/corp/ca.pem\nexport CURL_CA_BUNDLE=/opt/corp/ca.pem\n",
        ),
        ("trust-ca-bundle",),
        _exists("/etc/profile.d/zz-corp-ca.sh"),
    ),
    Defect(
        "tls-node-reject-unauthorized-off",
        "trust",
        "NODE_TLS_REJECT_UNAUTHORIZED=0 in /etc/environment",
        lambda d: (
            d.append("/etc/environment", "NODE_TLS_REJECT_UNAUTHORIZED=0\n")
            if d.exists("/etc/environment")
            else d.write("/etc/environment", "NODE_TLS_REJECT_UNAUTHORIZED=0\n")
        ),
        ("trust-ca-bundle",),
        lambda d: (
            d.exists("/etc/environment")
            and "NODE_TLS_REJECT_UNAUTHORIZED=0" in d.read_text("/etc/environment")
        ),
    ),
    Defect(
        "tls-gitconfig-sslverify-off",
        "trust",
        "/etc/gitconfig turns http.sslVerify off for every user",
        _write("/etc/gitconfig", "[http]\n\tsslVerify = false\n"),
        ("trust-ca-bundle",),
        _exists("/etc/gitconfig"),
    ),
    Defect(
        "tls-skel-curlrc-insecure",
        "trust",
        "/etc/skel/.curlrc says insecure (every new user's curl skips TLS checks)",
        _write("/etc/skel/.curlrc", "silent\ninsecure\n"),
        ("trust-ca-bundle",),
        _exists("/etc/skel/.curlrc"),
    ),
    Defect(
        "tls-pip-trusted-host",
        "trust",
        "/etc/pip.conf trusts a package index without TLS checks",
        _write(
            "/etc/pip.conf",
            "[global]\nindex-url = https://pypi.corp.example/simple\ntrusted-host =\n"
            "    pypi.corp.example\n",
        ),
        ("trust-ca-bundle",),
        _exists("/etc/pip.conf"),
    ),
    Defect(
        "tls-wgetrc-no-check",
        "trust",
        "/etc/wgetrc: check_certificate = off",
        lambda d: (
            d.append("/etc/wgetrc", "check_certificate = off\n")
            if d.exists("/etc/wgetrc")
            else d.write("/etc/wgetrc", "check_certificate = off\n")
        ),
        ("trust-ca-bundle",),
        lambda d: (
            d.exists("/etc/wgetrc") and "check_certificate = off" in d.read_text("/etc/wgetrc")
        ),
    ),
    Defect(
        "tls-python-sitecustomize-unverified",
        "trust",
        "a .pth file in dist-packages installs an unverified default HTTPS context",
        _write(
            "/usr/local/lib/python3.11/dist-packages/zz_corp_proxy.pth",
            "import ssl; ssl._create_default_https_context = ssl._create_unverified_context\n",
        ),
        ("trust-ca-bundle",),
        _exists("/usr/local/lib/python3.11/dist-packages/zz_corp_proxy.pth"),
    ),
    Defect(
        "ssh-client-no-host-key-check",
        "trust",
        "StrictHostKeyChecking no and UserKnownHostsFile /dev/null for every host, in a drop-in",
        _write("/etc/ssh/ssh_config.d/50-lab.conf", NO_HOST_KEY_CHECK),
        ("trust-ssh-client",),
        _exists("/etc/ssh/ssh_config.d/50-lab.conf"),
    ),
    Defect(
        "ssh-client-skel-agent",
        "trust",
        "ForwardAgent yes for *.internal in /etc/skel/.ssh/config (every new user's)",
        _skel_agent,
        ("trust-ssh-client",),
        _exists("/etc/skel/.ssh/config"),
    ),
    Defect(
        "ssh-client-legacy-algorithms",
        "trust",
        "+ssh-rsa, +diffie-hellman-group1-sha1, +aes128-cbc for legacy-* in ssh_config",
        lambda d: d.append("/etc/ssh/ssh_config", LEGACY_ALGORITHMS),
        ("trust-ssh-client",),
        _contains("/etc/ssh/ssh_config", "Host legacy-*"),
    ),
    Defect(
        "ssh-client-root-proxy-command",
        "trust",
        "a ProxyCommand in root's ~/.ssh/config, inside a Match host/user block",
        _root_proxy_command,
        ("trust-ssh-client",),
        _exists("/root/.ssh/config"),
    ),
    Defect(
        "pam-permit-sshd",
        "trust",
        "auth sufficient pam_permit.so first in /etc/pam.d/sshd",
        _prepend("/etc/pam.d/sshd", "auth sufficient pam_permit.so\n"),
        ("trust-pam",),
        _contains("/etc/pam.d/sshd", "pam_permit"),
    ),
    Defect(
        "pam-nullok-common-auth",
        "trust",
        "pam_unix nullok back in /etc/pam.d/common-auth",
        _nullok_back,
        ("trust-pam",),
        _contains("/etc/pam.d/common-auth", "nullok"),
    ),
    Defect(
        "pam-sudo-group-skips-password",
        "trust",
        "sudo: [success=done] pam_succeed_if for the sudo group before common-auth",
        _prepend(
            "/etc/pam.d/sudo",
            "auth [success=done default=ignore] pam_succeed_if.so user ingroup sudo\n",
        ),
        ("trust-pam",),
        _contains("/etc/pam.d/sudo", "pam_succeed_if"),
    ),
    # OpenSSL's system policy (trust-ca-bundle)
    Defect(
        "openssl-seclevel-0",
        "trust",
        "a system_default section appended to /etc/ssl/openssl.cnf: MinProtocol TLSv1, "
        "DEFAULT@SECLEVEL=0 ('for legacy peers')",
        _append(
            "/etc/ssl/openssl.cnf",
            "\n# legacy peers\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\n"
            "system_default = system_default_sect\n[system_default_sect]\n"
            "MinProtocol = TLSv1\nCipherString = DEFAULT@SECLEVEL=0\n",
        ),
        ("trust-ca-bundle",),
        _contains("/etc/ssl/openssl.cnf", "SECLEVEL=0"),
    ),
    Defect(
        "openssl-conf-env-legacy",
        "trust",
        "OPENSSL_CONF in /etc/environment names a site file whose system section allows "
        "TLS 1.1 at security level 1",
        _steps(
            _file(
                "/etc/ssl/openssl-site.cnf",
                "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = tls\n"
                "[tls]\nMinProtocol = TLSv1.1\nCipherString = DEFAULT:@SECLEVEL=1\n",
            ),
            _append("/etc/environment", 'OPENSSL_CONF="/etc/ssl/openssl-site.cnf"\n'),
        ),
        ("trust-ca-bundle",),
        _contains("/etc/environment", "OPENSSL_CONF"),
    ),
    # how a new password is stored (trust-pam)
    Defect(
        "pam-password-md5",
        "trust",
        "common-password's pam_unix told md5 instead of yescrypt: new passwords are md5-crypt",
        _edit(
            "/etc/pam.d/common-password", "pam_unix.so obscure yescrypt", "pam_unix.so obscure md5"
        ),
        ("trust-pam",),
        _contains("/etc/pam.d/common-password", "pam_unix.so obscure md5"),
    ),
    Defect(
        "login-defs-des-default",
        "trust",
        "no hash option on pam_unix's password line, and login.defs' ENCRYPT_METHOD DES: "
        "pam_unix falls back to DES crypt (8 characters)",
        _steps(
            _edit(
                "/etc/pam.d/common-password", "pam_unix.so obscure yescrypt", "pam_unix.so obscure"
            ),
            _edit("/etc/login.defs", "ENCRYPT_METHOD SHA512", "ENCRYPT_METHOD DES"),
        ),
        ("trust-pam",),
        _contains("/etc/login.defs", "ENCRYPT_METHOD DES"),
    ),
)


def _system_store_named(d: DiskEditor) -> None:
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    d.write(
        "/etc/profile.d/zz-ca.sh",
        f"export SSL_CERT_FILE={bundle}\nexport REQUESTS_CA_BUNDLE={bundle}\n",
    )
    d.write("/etc/gitconfig", "[http]\n\tsslVerify = true\n[init]\n\tdefaultBranch = main\n")
    d.write("/etc/pip.conf", "[global]\nindex-url = https://pypi.org/simple\ntimeout = 60\n")
    d.write("/etc/skel/.curlrc", "silent\nshow-error\n")


TRUST_GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "openssl-tls13-seclevel-3",
        "a system_default section: MinProtocol TLSv1.3, DEFAULT:@SECLEVEL=3",
        "a TLS policy stricter than the distribution's passes",
        _append(
            "/etc/ssl/openssl.cnf",
            "\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\n"
            "system_default = system_default_sect\n[system_default_sect]\n"
            "MinProtocol = TLSv1.3\nCipherString = DEFAULT:@SECLEVEL=3\n",
        ),
        _contains("/etc/ssl/openssl.cnf", "SECLEVEL=3"),
    ),
    GoodVariant(
        "cis-debian12-level2",
        "a CIS Level 2 remediation: pam_faillock, su limited to an empty group, umask 027 and "
        "TMOUT, core dumps off, an SSH banner and limits, persistent journald, cron tables "
        "root-only, /tmp and /dev/shm noexec",
        "the benchmark's own remediations are sound and must pass every check, booted too",
        _cis_level2,
        _contains("/etc/pam.d/common-auth", "pam_faillock.so authsucc"),
    ),
    GoodVariant(
        "tls-clients-system-store-named",
        "SSL_CERT_FILE and REQUESTS_CA_BUNDLE set to the system bundle, git and pip configured "
        "with TLS on, a skel .curlrc without insecure",
        "naming the system CA store explicitly (as EL tools and containers do) trusts nothing more",
        _system_store_named,
        _exists("/etc/profile.d/zz-ca.sh"),
    ),
    GoodVariant(
        "apt-third-party-signed-by",
        "bookworm-backports as a deb822 source whose key is named by Signed-By",
        "third-party sources are allowed when their key is scoped with signed-by",
        _vendor_signed_by,
        _exists("/etc/apt/sources.list.d/backports.sources"),
    ),
    GoodVariant(
        "ca-deselected",
        "one Mozilla CA deselected with ! in ca-certificates.conf, store regenerated",
        "removing trust is always allowed; only additions are findings",
        _deselect_one_ca,
        _contains("/etc/ca-certificates.conf", "\n!"),
    ),
    GoodVariant(
        "ssh-client-tightened",
        "a client drop-in that only tightens: accept-new, hashed known_hosts, fewer algorithms",
        "StrictHostKeyChecking accept-new is allowed: it still refuses a changed host key",
        _write("/etc/ssh/ssh_config.d/10-site.conf", TIGHTENED),
        _exists("/etc/ssh/ssh_config.d/10-site.conf"),
    ),
    GoodVariant(
        "pam-optional-faildelay",
        "auth optional pam_faildelay.so in /etc/pam.d/sshd and login",
        "extra optional modules are allowed; only a way in without a credential is a finding",
        _faildelay,
        _contains("/etc/pam.d/sshd", "pam_faildelay.so delay=4000000"),
    ),
)
