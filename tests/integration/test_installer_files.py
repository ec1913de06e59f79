"""What cannot run here, checked statically: every OS's installer file by its ecosystem's
validator, the xenserver-iso source against the plugin's field list, and every file a template
or var file references. Each check is also shown failing on a planted defect, in a copy of
packer/ (tests/support/template_lint.py has the checks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from build.catalog import load_catalog
from tests.support import template_lint as lint

REPO = Path(__file__).resolve().parents[2]
PACKER = REPO / "packer"
OSES = load_catalog(PACKER).names()

needs_debconf = pytest.mark.skipif(
    shutil.which("debconf-set-selections") is None, reason="debconf-utils not installed"
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of packer/ to plant a defect in."""
    return Path(shutil.copytree(PACKER, tmp_path / "packer"))


@needs_debconf
@pytest.mark.parametrize("catalog_os", OSES)
def test_installer_file_passes_its_family_validators(catalog_os: str) -> None:
    assert lint.installer_problems(PACKER, catalog_os) == []


def test_every_installer_family_in_use_has_validators() -> None:
    families = {
        str(s.variables["install_config_path"]).split("/")[0]
        for s in load_catalog(PACKER).specs.values()
    }
    assert families <= set(lint.VALIDATORS), families - set(lint.VALIDATORS)
    assert {"debian", "ubuntu"} <= families


def test_sources_use_only_fields_of_the_pinned_plugin() -> None:
    assert lint.plugin_version(PACKER) == "0.11.4"
    assert lint.plugin_field_problems(PACKER) == []


def test_every_referenced_file_exists() -> None:
    assert lint.referenced_file_problems(PACKER) == []


# --- the same checks failing on planted defects --------------------------------------------
def test_a_misspelt_source_field_is_caught(copy: Path) -> None:
    template = copy / "xcpng" / "xenserver.pkr.hcl"
    template.write_text(template.read_text().replace("iso_checksum =", "iso_chekcsum =", 1))
    problems = lint.plugin_field_problems(copy)
    assert problems == [
        "packer/xcpng/xenserver.pkr.hcl: source xenserver-iso.template: 'iso_chekcsum' is not "
        "a field of the plugin"
    ]


def test_a_field_the_plugin_lacks_is_caught(copy: Path) -> None:
    """`shutdown_timeout` exists in other builders but not in xenserver-iso (plugin #31)."""
    template = copy / "xcpng" / "xenserver.pkr.hcl"
    text = template.read_text().replace(
        'keep_vm = "never"', 'keep_vm = "never"\n  shutdown_timeout = "5m"'
    )
    template.write_text(text)
    assert any("'shutdown_timeout'" in p for p in lint.plugin_field_problems(copy))


def test_a_missing_referenced_file_is_caught(copy: Path) -> None:
    (copy / "http" / "ubuntu" / "meta-data").unlink()
    (copy / "scripts" / "60-network.sh").unlink()
    problems = lint.referenced_file_problems(copy)
    assert (
        "packer/xcpng/xenserver.pkr.hcl: references ../scripts/60-network.sh, which does not exist"
        in problems
    )
    assert sum("ubuntu needs meta-data beside ubuntu/user-data" in p for p in problems) == 3


def test_an_installer_file_that_is_not_there_is_caught(copy: Path) -> None:
    var_file = copy / "os" / "debian13.pkrvars.hcl"
    var_file.write_text(
        var_file.read_text().replace('"debian/preseed.cfg"', '"debian/preseed13.cfg"')
    )
    (problem,) = lint.referenced_file_problems(copy)
    assert "debian13.pkrvars.hcl: install_config_path 'debian/preseed13.cfg'" in problem


def test_an_installer_family_the_template_cannot_boot_is_caught(copy: Path) -> None:
    (copy / "http" / "kickstart").mkdir()
    (copy / "http" / "kickstart" / "ks.cfg").write_text("text\n")
    var_file = copy / "os" / "debian13.pkrvars.hcl"
    var_file.write_text(var_file.read_text().replace('"debian/preseed.cfg"', '"kickstart/ks.cfg"'))
    problems = lint.referenced_file_problems(copy)
    assert any("no installer_args entry for installer family 'kickstart'" in p for p in problems)
    assert any("no boot_credentials entry for installer family 'kickstart'" in p for p in problems)


def _edit_user_data(copy: Path, change: object) -> Path:
    path = copy / "http" / "ubuntu" / "user-data"
    doc = yaml.safe_load(path.read_text())
    change(doc)  # type: ignore[operator]
    path.write_text("#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["autoinstall"]["identity"].pop("password"),
            "'password' is a required property",
        ),
        (
            lambda d: d["autoinstall"].update(version=2),
            "autoinstall.version: 2 is greater than the maximum of 1",
        ),
        (
            lambda d: d["autoinstall"]["ssh"].update({"allow-pw": "yes"}),
            "'yes' is not of type 'boolean'",
        ),
        (
            lambda d: d["autoinstall"].update(updates="everything"),
            "autoinstall.updates: 'everything' is not one of ['security', 'all']",
        ),
    ],
    ids=["no-password", "version-2", "allow-pw-string", "updates-unknown"],
)
def test_a_broken_autoinstall_file_is_caught_by_the_schema(
    copy: Path, change: object, expected: str
) -> None:
    problems = lint.autoinstall_problems(_edit_user_data(copy, change))
    assert any(expected in p for p in problems), problems


def test_autoinstall_outside_cloud_config_is_caught(copy: Path) -> None:
    path = copy / "http" / "ubuntu" / "user-data"
    path.write_text(path.read_text().replace("#cloud-config\n", "", 1))
    assert "must start with #cloud-config" in lint.autoinstall_problems(path)[0]


def test_an_autoinstall_key_outside_autoinstall_is_caught(copy: Path) -> None:
    """Subiquity refuses cloud-config with an autoinstall key outside `autoinstall:`. `identity`
    is no cloud-config key, so cloud-init's schema rejects it too; `timezone` is one, so only
    the autoinstall check catches it."""
    path = _edit_user_data(copy, lambda d: d.update(identity=d["autoinstall"]["identity"]))
    assert (
        "'identity' is an autoinstall key outside autoinstall:"
        in lint.autoinstall_problems(path)[0]
    )
    (problem,) = lint.cloud_config_problems(path)
    assert "Additional properties are not allowed ('identity' was unexpected)" in problem
    path = _edit_user_data(copy, lambda d: (d.pop("identity"), d.update(timezone="UTC")))
    assert lint.cloud_config_problems(path) == []
    (problem,) = lint.autoinstall_problems(path)
    assert "'timezone' is an autoinstall key outside autoinstall: (subiquity refuses it)" in problem


@needs_debconf
def test_a_broken_preseed_is_caught(copy: Path) -> None:
    path = copy / "http" / "debian" / "preseed.cfg"
    path.write_text(path.read_text() + "d-i passwd/root-login\n")
    assert lint.preseed_problems(path)
