"""cloud-init-datasources: what makes a clone find its data on XCP-ng, under CloudStack (config
drive or virtual router) and with a seed, judged from the merged configuration."""

from __future__ import annotations

from validations.test_cloud_init import DS_IDENTIFY_DEFAULT, datasource_problems, ds_identify_policy

GOOD = {
    "datasource_list": ["NoCloud", "ConfigDrive", "CloudStack"],
    "datasource": {"CloudStack": {"max_wait": 30, "timeout": 10}},
}
OPEN = "search,found=all,maybe=all,notfound=enabled"


def test_the_template_configuration_passes() -> None:
    assert datasource_problems(GOOD, OPEN, has_wget=True, version=(22, 4, 2)) == []


def test_policy_is_read_as_ds_identify_reads_it() -> None:
    assert ds_identify_policy("") == DS_IDENTIFY_DEFAULT
    assert ds_identify_policy("# policy: x\npolicy: a\npolicy: " + OPEN + "\n") == OPEN


def test_default_policy_switches_cloud_init_off_under_cloudstack_on_xen() -> None:
    (problem,) = datasource_problems(GOOD, DS_IDENTIFY_DEFAULT, True, (22, 4, 2))
    assert "disables cloud-init when no datasource is found" in problem
    # a single-entry list is used as it is: ds-identify finds nothing to disable
    assert datasource_problems(
        {**GOOD, "datasource_list": ["CloudStack"]}, DS_IDENTIFY_DEFAULT, True, (22, 4, 2)
    ) == ["datasource_list ['CloudStack'] lacks NoCloud, ConfigDrive"]


def test_missing_sources_unbounded_wait_and_no_wget() -> None:
    cfg = {"datasource_list": ["NoCloud", "ConfigDrive", "CloudStack"]}  # default max_wait 120
    problems = datasource_problems(cfg, OPEN, has_wget=False, version=(25, 1, 4))
    assert any("max_wait is 120" in p for p in problems)
    assert any("asks CloudStack's password server with wget" in p for p in problems)
    assert datasource_problems(GOOD, OPEN, has_wget=False, version=(25, 2)) == []
    assert datasource_problems({"datasource_list": ["NoCloud"]}, OPEN, True, None) == [
        "datasource_list ['NoCloud'] lacks ConfigDrive, CloudStack"
    ]
