"""The EL branches of the provisioning scripts, held to what the EL checks read.

They run only in an EL build on a pool; here: shellcheck (the scripts as a whole in the test
command, and the seal's power-off script, a heredoc shellcheck cannot see inside), the seal's
relabel list equal to the places the label check reads, the crypto sub-policy equal to the
module crypto-policies' generator turned into the back-end the good EL tree ships, and the
harness running EL checks for EL templates only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.family_checks import split_by_family
from validations import sshd
from validations.expected import EL_SECURITY, expected_checks
from validations.test_el_security import LABELLED

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "packer" / "scripts"
DATA = REPO / "tests" / "data" / "el" / "crypto-policies"
EL_GUARD = 'if [[ "${OS_FAMILY:-}" == el ]]; then'


def _heredocs(text: str) -> dict[str, str]:
    """Quoted heredocs (<<'NAME' ... NAME) of a script: name -> body."""
    return {
        m.group(1): m.group(2) for m in re.finditer(r"<<'([A-Z]+)'\n(.*?)\n\1\n", text, re.DOTALL)
    }


def test_the_seal_relabels_exactly_what_the_label_check_reads() -> None:
    seal = (SCRIPTS / "90-seal.sh").read_text()
    block = re.search(r"el_labelled=\(\n(.*?)\n\s*\)", seal, re.DOTALL)
    assert block, "90-seal.sh has no el_labelled list"
    assert tuple(block.group(1).split()) == LABELLED


def test_the_el_blocks_are_guarded_and_where_they_must_be() -> None:
    ssh = (SCRIPTS / "20-ssh-hardening.sh").read_text()
    el = ssh.index(EL_GUARD)
    assert el < ssh.index('install -m 0600 -o root -g root "$tmp" "$DROPIN"'), (
        "the algorithms must leave the drop-in before it is installed"
    )
    assert "sed -i -E '/^(Ciphers|KexAlgorithms|MACs) /d' \"$tmp\"" in ssh[el:]
    assert "update-crypto-policies --no-reload --set" in ssh[el:]
    assert EL_GUARD in (SCRIPTS / "90-seal.sh").read_text()
    hardening = (SCRIPTS / "30-system-hardening.sh").read_text()
    arm = hardening[hardening.index("\n  el)\n") :]
    arm = arm[: arm.index("\n    ;;\n")]
    for needle in (
        "SELINUX=enforcing", "firewalld", "DefaultZone=public", "getenforce",
        "authselect enable-feature without-nullok",
    ):  # fmt: skip
        assert needle in arm, needle


def test_the_sub_policy_is_the_one_the_back_end_was_generated_from() -> None:
    ssh = (SCRIPTS / "20-ssh-hardening.sh").read_text()
    module = _heredocs(ssh)["PMOD"] + "\n"
    assert module == (DATA / "TEMPLATE-SSH.pmod").read_text(), (
        "the module changed: regenerate tests/data/el/crypto-policies (see SOURCE.md there)"
    )
    backend = {}
    for line in (DATA / "opensshserver-DEFAULT-TEMPLATE-SSH.txt").read_text().splitlines():
        key, _, value = line.partition(" ")
        backend[key.lower()] = value
    for key, strong in (
        ("ciphers", sshd.STRONG_CIPHERS),
        ("kexalgorithms", sshd.STRONG_KEX),
        ("macs", sshd.STRONG_MACS),
    ):
        offered = sshd.algorithms(backend[key])
        assert offered and set(offered) <= strong, (key, set(offered) - strong)


def el_branches() -> dict[str, str]:
    """Every EL branch of the scripts: guarded blocks (the seal's may sit in the power-off
    script it writes, a heredoc shellcheck never sees) and the el) arms of `case`."""
    found = {}
    for script in sorted(SCRIPTS.glob("*.sh")):
        lines = script.read_text().splitlines()
        for i, line in enumerate(lines):
            indent = line[: len(line) - len(line.lstrip())]
            if line.strip() == EL_GUARD:
                end = lines.index(f"{indent}fi", i)
            elif line.strip() == "el)":
                end = next(j for j in range(i, len(lines)) if lines[j].strip() == ";;")
            else:
                continue
            found[f"{script.name}:{i + 1}"] = "\n".join(lines[i : end + 1])
    return found


def test_the_el_branches_are_found() -> None:
    found = el_branches()
    names = {k.split(":")[0] for k in found}
    assert {"20-ssh-hardening.sh", "30-system-hardening.sh", "90-seal.sh"} <= names


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="apt-get install shellcheck")
@pytest.mark.parametrize("where", sorted(el_branches()))
def test_el_branch_passes_shellcheck(where: str, tmp_path: Path) -> None:
    body = el_branches()[where]
    if body.lstrip().startswith("el)"):  # an arm of a case: give it its case back
        body = f'case "$OS_FAMILY" in\n{body}\nesac'
    script = tmp_path / "branch.sh"
    # Variables the rest of the script sets or reads (tmp, present, shadow_mode) are not
    # visible here: SC2154 (used, not set) and SC2034 (set, not used).
    script.write_text(
        f"#!/usr/bin/env bash\n# shellcheck disable=SC2154,SC2034\nset -euo pipefail\n{body}\n"
    )
    done = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, f"{where}:\n{done.stdout}"


def _item(os_name: str, check_id: str | None) -> Any:
    props = [("os", os_name)] + ([("check_id", check_id)] if check_id else [])
    return SimpleNamespace(user_properties=props, name=f"{os_name}-{check_id}")


def test_el_checks_run_for_el_templates_only() -> None:
    items = [
        _item("debian12", "el-selinux-labels"),
        _item("rocky9", "el-selinux-labels"),
        _item("debian12", "ssh-crypto"),
        _item("rocky9", "ssh-crypto"),
        _item("debian12", "a-check-no-family-lists-yet"),
        _item("debian12", None),
    ]
    keep, drop = split_by_family(
        items,
        {"debian12": "debian", "rocky9": "el"},
        expected_checks,
    )
    assert [i.name for i in drop] == ["debian12-el-selinux-labels"]
    assert len(keep) == 5
    assert set(EL_SECURITY) <= set(expected_checks("el"))
