"""The credential scanner: each detector on small byte strings, the archives it opens, and the
scan of a root tree whose dpkg database vouches for some of its files."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import struct
import subprocess
from pathlib import Path

import pytest

from core.errors import InfrastructureError
from tests.support.archives import tar_of, zip_of
from validations import archives
from validations import credentials as cred
from validations.credscan import compiled_from_untouched, scan
from validations.offline import Ext4Image
from validations.offline_tree import TreeImage

# Made-up values in the providers' formats (none is a real credential).
TOKENS = {
    "an AWS access key id": b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    "an AWS secret key": b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "a GitHub token": b"export GH_TOKEN=ghp_" + b"a1B2" * 9 + b"\n",
    "a GitLab token": b"CI_TOKEN=glpat-" + b"x7Y8z9" * 4 + b"\n",
    "a Slack token": b"SLACK=xoxb-123456789012-abcdefABCDEF\n",
    "a Google API key": b'{"key": "AIza' + b"S" * 35 + b'"}',
    "a Google OAuth client secret": b"client_secret: GOCSPX-" + b"q" * 28 + b"\n",
    "a Stripe key": b"STRIPE=sk_live_" + b"4eC39HqLyjWDarjtT1zdp7dc" + b"\n",
    "an npm token": b"token npm_" + b"N" * 36 + b"\n",
    "an npm registry credential": b"//registry.npmjs.org/:_authToken=abcdef123456\n",
    "a PyPI token": b"password = pypi-AgEIcHlwaS5vcmc" + b"p" * 60 + b"\n",
    "a Docker registry credential": b'{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}',
    "an Azure storage key": (
        b"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + b"A" * 86 + b"==;"
    ),
    "a HashiCorp Vault token": b"VAULT_TOKEN=hvs." + b"C" * 90 + b"\n",
    "a DigitalOcean token": b"token: dop_v1_" + b"f" * 64 + b"\n",
    "an OpenAI key": b"OPENAI_API_KEY=sk-proj-" + b"Z" * 60 + b"\n",
    "a password in a URL": b'Acquire::http::Proxy "http://ci:Hunter22@10.0.0.5:3142/";\n',
    "a password assignment": b"[db]\npassword = Tr0ub4dor&3\n",
    "a password hash": b"admin:$6$saltsalt$" + b"h" * 86 + b"\n",
    "a netrc password": b"machine apt.corp.example\nlogin deploy\npassword Zq8vLm2pXr\n",
    "a password on a command line": b"0 1 * * * root mysqldump -uroot -pZq8vLm2pXr db\n",
    "a JSON Web Token": b"token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3In0.dozjgNryP4J3jVmNHl0w\n",
    "an HTTP Authorization header": b"Authorization: Basic YWRtaW46WnE4dkxtMnBYcg==\n",
    "a WireGuard private or pre-shared key": (
        b"[Interface]\nAddress = 10.0.0.2/32\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"
    ),
}
# The other spellings of a password on a command line, and a Wi-Fi pre-shared key.
COMMAND_LINES = [
    b"sshpass -p 'Zq8vLm2pXr' ssh host\n",
    b"curl -u admin:Zq8vLm2pXr https://example.com/x\n",
    b"wget --user=admin:Zq8vLm2pXr https://example.com/x\n",
    b"lftp --password Zq8vLm2pXr host\n",
    b"smbclient //h/s -U bob%Zq8vLm2pXr\n",
]


@pytest.mark.parametrize("label", sorted(TOKENS))
def test_each_kind_is_found_and_named_not_shown(label: str) -> None:
    found = cred.secrets_in(TOKENS[label])
    assert label in found
    assert all(b"Hunter22" not in x.encode() and "Tr0ub" not in x for x in found)


@pytest.mark.parametrize(
    "data",
    [
        b"password: ********\n",
        b"passwd\nsudo -i\n",
        b"PasswordAuthentication no\nPermitEmptyPasswords no\n",
        b'passwd=$(getent passwd "$user")\n',  # a maintainer script's variable
        b"secret:$t_sec\n",
        b"password = ${DB_PASSWORD}\npassword = %(pw)s\napi_key = {{ vault_key }}\n",
        b"password_file = /run/secrets/db\npassword =\n",
        b"export http_proxy=http://proxy.corp:3128\nhttps://user@git.example/repo\n",
        b"http://$PROXY_USER:$PROXY_PASSWORD@proxy:3128\n",
        b'KEY = b"-----BEGIN RSA PRIVATE KEY-----"\n',  # the marker alone: a constant in code
        b"AKIAIOSFODNN7EXAMPLE1234",  # longer than an access key id
        b"Setting up openssh-server (1:9.2p1-2)\n",
        b'curl -u "$USER:$PASS" https://x\nmysql -p"$DBPASS" db\nmysql -p db\n',
        b'sshpass -p "$X" ssh h\nls -p /tmp\nmkdir -p /var/lib/app\n--password "$P"\n',
        b"key_mgmt=WPA-PSK\nthe machine name and the password prompt\n",
    ],
)
def test_no_false_alarm_on_what_is_not_a_secret(data: bytes) -> None:
    assert cred.secrets_in(data) == []


@pytest.mark.parametrize("data", COMMAND_LINES)
def test_each_spelling_of_a_password_on_a_command_line(data: bytes) -> None:
    assert cred.secrets_in(data) == ["a password on a command line"]


def test_wifi_pre_shared_keys() -> None:
    assert cred.secrets_in(b'network={\n ssid="corp"\n psk="Zq8vLm2pXr99"\n}\n')
    assert cred.secrets_in(b"[wifi-security]\nkey-mgmt=wpa-psk\npsk=Zq8vLm2pXr99\n")


@pytest.mark.parametrize(
    "block",
    [
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\nMIIE\n-----END RSA PRIVATE KEY-----",
        b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkq\n-----END ENCRYPTED PRIVATE KEY-----",
        b'{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n-----END PRIVATE KEY-----\\n"}',
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGE=\n=x1y2\n-----END PGP PRIVATE KEY BLOCK-----",
        b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        b"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56w==\n",
    ],
)
def test_private_keys_of_every_kind(block: bytes) -> None:
    assert cred.private_keys(b"\0binary prefix\0" + block)


def test_hashes_can_be_left_to_the_account_checks() -> None:
    data = TOKENS["a password hash"]
    assert cred.secrets_in(data, hashes=False) == []


def test_debconf_password_store() -> None:
    text = (
        "Name: mysql-server/root_password\nTemplate: mysql-server/root_password\n"
        "Value: s3cret\nOwners: mysql-server\n\n"
        "Name: passwd/user-password\nTemplate: passwd/user-password\nValue: \nOwners: user-setup\n"
    )
    assert cred.debconf_passwords(text) == ["mysql-server/root_password"]


# -- archives ------------------------------------------------------------------------------------

PEM = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n"


def test_archives_open_by_their_magic_and_nest() -> None:
    inner = tar_of({"root/.ssh/id_ecdsa": PEM})
    outer = zip_of({"backup/home.tar.xz": lzma.compress(inner), "readme.txt": b"hello"})
    found = dict(archives.unpack("/opt/b.zip", outer))
    assert found["/opt/b.zip!backup/home.tar.xz!root/.ssh/id_ecdsa"] == PEM
    assert "/opt/b.zip!readme.txt" in found
    assert dict(archives.unpack("/x.log.gz", gzip.compress(b"log")))["/x.log.gz!x.log"] == b"log"
    assert dict(archives.unpack("/x.bz2", bz2.compress(b"b")))["/x.bz2!x"] == b"b"
    assert dict(archives.unpack("/t.tgz", tar_of({"a": b"1"}, "gz"))) == {"/t.tgz!a": b"1"}
    assert list(archives.unpack("/plain", b"just text")) == []
    assert list(archives.unpack("/broken.gz", b"\x1f\x8b\x08garbage")) == []


def test_archives_are_bounded() -> None:
    bomb = gzip.compress(b"\0" * (archives.MAX_MEMBER_BYTES + 1024))
    ((_, data),) = archives.unpack("/bomb.gz", bomb)
    assert len(data) == archives.MAX_MEMBER_BYTES
    deep = b"x"
    for _ in range(archives.MAX_DEPTH + 2):
        deep = gzip.compress(deep)
    assert len(list(archives.unpack("/deep.gz", deep))) == archives.MAX_DEPTH


# -- the scan of a tree with a package database ----------------------------------------------------


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def pyc(source_size: int) -> bytes:
    """A timestamp-based .pyc header (PEP 552) naming its source's size, then code."""
    return b"\xa7\r\r\n" + struct.pack("<III", 0, 0, source_size) + b"http://joe:secret@proxy/"


def make_tree(root: Path) -> Path:
    files: dict[str, bytes] = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
        "etc/shadow": b"root:$6$saltsalt$" + b"r" * 86 + b":19000::::::\n",
        "etc/ssh/ssh_host_ed25519_key": PEM,
        "etc/skel/.bashrc": b"# ~/.bashrc\n",
        "usr/share/doc/example.conf": b"password = example-in-docs\n",  # untouched package file
        "usr/lib/python3/dist-packages/m.py": b"URL = 'http://joe:secret@proxy/'\n",
        "usr/lib/python3/dist-packages/__pycache__/m.cpython-311.pyc": pyc(33),
        "usr/lib/python3/dist-packages/__pycache__/n.cpython-311.pyc": pyc(5),  # no source
        "etc/app.conf": b"password = changed-by-someone\n",  # modified package conffile
        "root/.profile": b"# nothing\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: pkg\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"
        f"Conffiles:\n /etc/app.conf {md5(b'password = original')}\n"
    )
    (info / "pkg.list").write_text(
        "/usr/share/doc/example.conf\n/usr/lib/python3/dist-packages/m.py\n/etc/app.conf\n"
        "/etc/skel/.bashrc\n"
    )
    (info / "pkg.md5sums").write_text(
        f"{md5(files['usr/share/doc/example.conf'])}  usr/share/doc/example.conf\n"
        f"{md5(files['usr/lib/python3/dist-packages/m.py'])}  usr/lib/python3/dist-packages/m.py\n"
        f"{md5(files['etc/skel/.bashrc'])}  etc/skel/.bashrc\n"
    )
    return root


def test_scan_skips_what_the_packages_vouch_for_and_reads_the_rest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    assert scan(TreeImage(root)) == [
        "/etc/app.conf: a password assignment",
        "/usr/lib/python3/dist-packages/__pycache__/n.cpython-311.pyc: a password in a URL",
    ]


@pytest.mark.parametrize(
    "rel, data, finding",
    [
        ("etc/skel/.ssh/authorized_keys", b"ssh-ed25519 AAAA x\n", "authorized keys"),
        ("etc/skel/.netrc", b"machine x\n", "a credential file"),
        ("etc/skel/.bashrc", b"export GH_TOKEN=ghp_" + b"a" * 36 + b"\n", "a GitHub token"),
        ("srv/backup.tar.gz", b"", "a private key"),
        ("var/cache/debconf/passwords.dat", b"Name: a/pw\nValue: x\n", "password store"),
        ("etc/passwd", b"root:$y$j9T$salt$" + b"y" * 43 + b":0:0::/root:/bin/sh\n", "hash"),
        ("etc/ppp/chap-secrets", b'# client server secret\n"u" * "Zq8vLm2pXr" *\n', "credential"),
        ("etc/postfix/sasl_passwd", b"[smtp.example]:587 u@example:Zq8vLm2pXr\n", "credential"),
        ("etc/apt/auth.conf.d/corp.conf", b"machine a login b password Zq8vLm2pXr\n", "netrc"),
        ("var/log/installer/cdebconf/questions.dat", b"Value: $6$ab$" + b"z" * 86, "installer"),
    ],
)
def test_scan_finds_each_place(tmp_path: Path, rel: str, data: bytes, finding: str) -> None:
    root = make_tree(tmp_path)
    if rel.endswith(".tar.gz"):
        data = tar_of({"root/.ssh/id_ecdsa": PEM}, "gz")
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    found = [f for f in scan(TreeImage(root)) if f.startswith("/" + rel)]
    assert found and finding in found[0], found


def test_a_pyc_is_skipped_only_for_an_untouched_source_of_its_size() -> None:
    untouched = {"/usr/lib/a/m.py": 33}
    assert compiled_from_untouched("/usr/lib/a/__pycache__/m.cpython-311.pyc", pyc(33), untouched)
    assert not compiled_from_untouched(
        "/usr/lib/a/__pycache__/m.cpython-311.pyc", pyc(34), untouched
    )
    assert not compiled_from_untouched("/usr/lib/a/m.cpython-311.pyc", pyc(33), untouched)
    assert not compiled_from_untouched(
        "/usr/lib/a/__pycache__/x.cpython-311.pyc", pyc(33), untouched
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="mkfs.ext4 -d keeps owners only as root")
def test_ext4_reader_streams_files_in_one_run(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/big").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (root / 'odd "name"').write_bytes(b"quotes cannot pass to debugfs")
    fs = tmp_path / "root.ext4"
    with fs.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs)], check=True)
    image = Ext4Image(fs, 0)
    paths = [p for p, st in image.walk("/") if st.is_file] + ["/bin", "/nothing"]
    got = dict(image.read_files(paths))
    assert got["/usr/bin/big"] == (root / "usr/bin/big").read_bytes()
    assert got["/etc/shadow"] == (root / "etc/shadow").read_bytes()
    assert "/bin" not in got and "/nothing" not in got and '/odd "name"' not in got
    assert scan(image) == scan(TreeImage(root))


@pytest.mark.skipif(os.geteuid() != 0, reason="mkfs.ext4 -d keeps owners only as root")
def test_ext4_stream_out_of_step_hands_out_nothing_wrong(tmp_path: Path) -> None:
    """A file whose bytes do not match the listing's size (a read debugfs failed, a damaged
    inode) stops the stream before that file is handed out."""
    root = tmp_path / "root"
    for name in ("a", "b", "c"):
        (root / "d").mkdir(parents=True, exist_ok=True)
        (root / "d" / name).write_bytes(name.encode() * 10)
    fs = tmp_path / "root.ext4"
    with fs.open("wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs)], check=True)
    image = Ext4Image(fs, 0)
    paths = [p for p, st in image.walk("/d")]
    st = image._dirs["/d"]["b"]
    image._dirs["/d"]["b"] = type(st)(st.mode, st.uid, st.gid, st.size + 5)  # the listing lies
    got: list[tuple[str, bytes]] = []
    with pytest.raises(InfrastructureError, match="lost step"):
        got.extend(image.read_files(paths))
    assert got == [("/d/a", b"a" * 10)]


def test_package_integrity_judges_changed_package_files_but_not_conffiles(tmp_path: Path) -> None:
    """The shared verification (validations/packagedb.verify): a changed conffile is the
    administrator's; a changed program or module is not what the package installed."""
    from validations.test_packages import integrity_findings

    root = make_tree(tmp_path)
    assert integrity_findings(TreeImage(root)) == []  # etc/app.conf changed: a conffile
    (root / "usr/lib/python3/dist-packages/m.py").write_bytes(b"import os\n")
    assert integrity_findings(TreeImage(root)) == [
        "/usr/lib/python3/dist-packages/m.py: not the content pkg 1 installed"
    ]


def test_a_distributions_own_example_secret_is_not_a_finding() -> None:
    # Debian's openssl.cnf, once edited (its md5 no longer vouches for it), still carries the
    # CMP demo's documented `secret = pass:insta` and commented `input_password = secret`: an
    # edit must not make them credentials
    from validations.credentials import secrets_in

    stock = (
        b"[insta]\nsecret = pass:insta # can be used for both client and server side\n"
        b"[x]\n# input_password = secret\n# output_password = secret\n"
    )
    assert secrets_in(stock) == []
    # the same values on any other line are findings
    assert secrets_in(b"[cmp]\nsecret = pass:insta\n") == ["a password assignment"]
    assert secrets_in(b"input_password = secret\n") == ["a password assignment"]
