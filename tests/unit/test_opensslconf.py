"""validations/opensslconf.py: OpenSSL's system TLS policy read as libssl reads its
configuration (sections, includes into the current section, later values winning, $vars), on
files shaped like Debian 12's (no system section) and EL 9's (crypto-policies included)."""

from __future__ import annotations

from validations import opensslconf

DEBIAN = "HOME = .\nopenssl_conf = openssl_init\n[ new_oids ]\n[openssl_init]\n[ ca ]\n"
EL = (
    "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
    "ssl_conf = ssl_module\n[ssl_module]\nsystem_default = crypto_policy\n[crypto_policy]\n"
    ".include = /etc/crypto-policies/back-ends/opensslcnf.config\n[provider_sect]\n"
)
# crypto-policies' back end as EL 9 writes it (DEFAULT, then LEGACY)
EL_POLICY = (
    "CipherString = @SECLEVEL=2:kEECDH:kRSA:kEDH:-aDSS:-3DES:!DES:!RC4:!eNULL:!aNULL:!MD5\n"
    "TLS.MinProtocol = TLSv1.2\nDTLS.MinProtocol = DTLSv1.2\n"
)
EL_LEGACY = (
    "CipherString = @SECLEVEL=1:kEECDH:kRSA\nTLS.MinProtocol = TLSv1\nDTLS.MinProtocol = DTLSv1\n"
)
WEAKENED = (
    "\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = sys\n[sys]\n"
    "MinProtocol = TLSv1\nCipherString = DEFAULT@SECLEVEL=0 # legacy peers\n"
    "Options = UnsafeLegacyRenegotiation\n"
)


def run(files: dict[str, str], conf: str) -> list[str]:
    def listdir(path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in files if p.startswith(prefix)})

    return opensslconf.findings(conf, files.get, listdir)


def test_distribution_files_pass() -> None:
    assert run({"/etc/ssl/openssl.cnf": DEBIAN}, "/etc/ssl/openssl.cnf") == []
    el = {"/etc/pki/tls/openssl.cnf": EL,
          "/etc/crypto-policies/back-ends/opensslcnf.config": EL_POLICY}  # fmt: skip
    assert run(el, "/etc/pki/tls/openssl.cnf") == []
    assert run({}, "/etc/ssl/openssl.cnf") == []  # no file: the built-in defaults


def test_a_system_section_appended_to_debians_file_is_read() -> None:
    found = run({"/etc/ssl/openssl.cnf": DEBIAN + WEAKENED}, "/etc/ssl/openssl.cnf")
    assert len(found) == 3, found
    assert "MinProtocol = TLSv1 (TLS below 1.2 allowed)" in found[0]
    assert "security level 0" in found[1]
    assert "UnsafeLegacyRenegotiation" in found[2]


def test_el_legacy_policy_through_the_include() -> None:
    el = {"/etc/pki/tls/openssl.cnf": EL,
          "/etc/crypto-policies/back-ends/opensslcnf.config": EL_LEGACY}  # fmt: skip
    found = run(el, "/etc/pki/tls/openssl.cnf")
    assert any("security level 1" in f for f in found), found
    assert any("TLS.MinProtocol = TLSv1 " in f for f in found), found
    assert any("DTLS.MinProtocol = DTLSv1 " in f for f in found), found
    assert all("section [crypto_policy]" in f for f in found)


def test_include_folder_and_later_values_win() -> None:
    files = {
        "/etc/ssl/openssl.cnf": "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\n"
        "system_default = tls\n[tls]\nMinProtocol = TLSv1.2\n.include /etc/ssl/openssl.d\n",
        "/etc/ssl/openssl.d/10-site.cnf": "MinProtocol = TLSv1.1\n",
        "/etc/ssl/openssl.d/20-fix.cnf": "CipherString = $level\n[tls]\nlevel = x\n",
        "/etc/ssl/openssl.d/README": "MinProtocol = None\n",  # not a .cnf/.conf: not read
    }
    found = run(files, "/etc/ssl/openssl.cnf")
    assert found == [
        "OpenSSL's system policy (/etc/ssl/openssl.cnf, section [tls]): MinProtocol = TLSv1.1 "
        "(TLS below 1.2 allowed)"
    ]


def test_cipher_words_and_protocol_lists() -> None:
    where = "x"
    assert opensslconf.weakenings({"CipherString": "DEFAULT:!eNULL:!RC4"}, where) == []
    assert "enables RC4" in opensslconf.weakenings({"CipherString": "DEFAULT:RC4"}, where)[0]
    assert opensslconf.weakenings({"Protocol": "-ALL, TLSv1.2, TLSv1.3"}, where) == []
    assert "enables TLSv1" in opensslconf.weakenings({"Protocol": "ALL, TLSv1"}, where)[0]
