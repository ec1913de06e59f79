"""TLS clients told to skip verification or to trust another store: each client's own switch,
in the files and spellings it reads; and what is sound (the system store named explicitly)."""

from __future__ import annotations

import pytest

from validations import tlsclients


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("export NODE_TLS_REJECT_UNAUTHORIZED=0\n", "turns off Node.js"),
        ('GIT_SSL_NO_VERIFY="true"\n', "turns off git"),
        ("GIT_SSL_NO_VERIFY=\n", "turns off git"),  # any value, empty too
        ("GIT_SSL_NO_VERIFY=0\n", "turns off git"),
        ("PYTHONHTTPSVERIFY=0\n", "Python's urllib"),
        ("export REQUESTS_CA_BUNDLE=/opt/corp/ca.pem\n", "replaces python-requests' CA bundle"),
        ("SSL_CERT_DIR DEFAULT=/srv/certs\n", "replaces OpenSSL's CA folder"),  # pam_env.conf
        ("DefaultEnvironment=LANG=C NODE_EXTRA_CA_CERTS=/etc/corp.pem\n", "Node.js's extra"),
        ("setenv CURL_CA_BUNDLE /tmp/x.pem\n", ""),  # csh: not a form these files use
        ("export PIP_TRUSTED_HOST=pypi.corp.example\n", "pip skip"),
    ],
)
def test_environment(text: str, needle: str) -> None:
    found = tlsclients.environment_findings("/etc/environment", text)
    if needle:
        assert len(found) == 1 and needle in found[0], found
    else:
        assert found == []


def test_sound_environment() -> None:
    text = (
        "export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\nREQUESTS_CA_BUNDLE=/etc/ssl/certs/\n"
        "NODE_TLS_REJECT_UNAUTHORIZED=1\n# GIT_SSL_NO_VERIFY=1\nPYTHONHTTPSVERIFY=1\n"
    )
    assert tlsclients.environment_findings("/etc/profile.d/ca.sh", text) == []


@pytest.mark.parametrize(
    ("client", "text", "needle"),
    [
        ("git", "[http]\n\tsslVerify = false\n", "git skips"),
        ("git", '[http "https://git.corp.example"]\n\tsslverify = no\n', "git skips"),
        ("git", "[http]\n\tsslCAInfo = /opt/corp/ca.pem\n", "replaces git's CA store"),
        ("wget", "check_certificate = off\n", "wget skips"),
        ("wget", "ca_certificate = /opt/ca.pem\n", "replaces wget's"),
        ("curl", "insecure\n", "curl skips"),
        ("curl", "-k\n", "curl skips"),
        ("curl", "--cacert /opt/corp.pem\n", "replaces curl's"),
        ("pip", "[global]\ntrusted-host = pypi.corp.example\n", "pip skips"),
        ("pip", "[global]\ntrusted-host =\n    a.example\n    b.example\n", "pip skips"),
        ("pip", "[install]\nindex-url = http://pypi.corp.example/simple\n", "plain http"),
        ("pip", "[global]\ncert = /opt/corp.pem\n", "replaces pip's"),
        ("npm", "strict-ssl=false\n", "npm skips"),
        ("npm", "cafile=/opt/corp.pem\n", "replaces npm's"),
    ],
)
def test_client_configs(client: str, text: str, needle: str) -> None:
    found = tlsclients.config_findings("/etc/x", client, text)
    assert len(found) == 1 and needle in found[0], found


@pytest.mark.parametrize(
    ("client", "text"),
    [
        ("git", "[http]\n\tsslVerify = true\n[user]\n\tname = x\n# sslVerify = false\n"),
        ("git", "[http]\n\tsslCAInfo = /etc/ssl/certs/ca-certificates.crt\n"),
        ("wget", "check_certificate = on\n#check_certificate = off\n"),
        ("curl", "silent\nshow-error\ncacert = /etc/ssl/certs/ca-certificates.crt\n"),
        ("pip", "[global]\nindex-url = https://pypi.corp.example/simple\ntimeout = 60\n"),
        ("npm", "strict-ssl=true\nregistry=https://registry.npmjs.org/\n"),
    ],
)
def test_sound_client_configs(client: str, text: str) -> None:
    assert tlsclients.config_findings("/etc/x", client, text) == []


def test_python_hooks() -> None:
    bad = "import ssl\nssl._create_default_https_context = ssl._create_unverified_context\n"
    assert tlsclients.python_hook_findings("/etc/python3.11/sitecustomize.py", bad)
    assert not tlsclients.python_hook_findings("/x.pth", "import os; os.environ.get('X')\n")
    assert tlsclients.is_python_hook("/usr/lib/python3/dist-packages/zz.pth")
    assert tlsclients.is_python_hook("/usr/lib/python3.11/sitecustomize.py")
    assert not tlsclients.is_python_hook("/usr/lib/python3/dist-packages/a/b.pth")


def test_findings_reads_every_home_and_folder() -> None:
    files = {
        "/etc/profile.d/corp.sh": "export REQUESTS_CA_BUNDLE=/opt/corp.pem\n",
        "/etc/skel/.gitconfig": "[http]\nsslVerify = false\n",
        "/root/.curlrc": "insecure\n",
    }
    found = tlsclients.findings(
        files.get,
        lambda d: ["corp.sh"] if d == "/etc/profile.d" else [],
        ["/root", "/etc/skel"],
        [],
    )
    assert sorted(f.split(":")[0] for f in found) == [
        "/etc/profile.d/corp.sh", "/etc/skel/.gitconfig", "/root/.curlrc",
    ]  # fmt: skip
