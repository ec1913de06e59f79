"""Whether the clone keeps its logs across a reboot, read from what the running system did.

journald decides where logs go from its configuration (`Storage=` in journald.conf and every
drop-in, the last one winning, `auto` meaning "persistent if /var/log/journal exists"), and
systemd-journal-flush moves the boot's journal there once /var is mounted. Rather than
re-deriving that, the check looks at the outcome: a journal file for this machine-id under
/var/log/journal (persistent), or a syslog daemon running and writing its files under /var/log.
journald's effective configuration (`systemd-analyze cat-config`, systemd's own merge order)
is read only to name the cause. Pure: the answers come from validations/remote.ask.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSLOG_DAEMONS = ("rsyslog.service", "syslog-ng.service", "busybox-syslogd.service")
SYSLOG_FILES = ("/var/log/syslog", "/var/log/messages")

# One exchange. `persistent`: the journal files of this machine-id under /var/log/journal;
# `entries`: how many lines this boot's journal holds (the last 5 asked); `syslog`: the state
# of each syslog daemon, then the sizes of the files they write.
COMMANDS = {
    "persistent": 'ls -1 "/var/log/journal/$(cat /etc/machine-id)" 2>/dev/null; true',
    "entries": "journalctl -b -q --no-pager -n 5 -o cat 2>/dev/null | wc -l",
    "syslog": f"systemctl is-active {' '.join(SYSLOG_DAEMONS)} 2>/dev/null; "
    f'for f in {" ".join(SYSLOG_FILES)}; do [ -s "$f" ] && echo "$f"; done; true',
    "config": "systemd-analyze cat-config systemd/journald.conf 2>/dev/null; true",
}


@dataclass(frozen=True)
class Setting:
    value: str
    source: str  # the file that set it last


def effective(cat_config: str, key: str) -> Setting | None:
    """The last `key=` of `systemd-analyze cat-config` output (files in systemd's order, each
    after a `# /path` line), and the file it came from."""
    source, found = "", None
    for raw in cat_config.splitlines():
        line = raw.strip()
        if line.startswith("# /"):
            source = line[2:].strip()
            continue
        if not line or line[0] in "#;" or line.startswith("["):
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            found = Setting(value.strip(), source)
    return found


def findings(answers: dict[str, str]) -> list[str]:
    """What is wrong with the clone's logging, from the COMMANDS' outputs."""
    journal_files = [n for n in answers["persistent"].split() if n.endswith(".journal")]
    lines = answers["syslog"].split()
    daemons = [d for d, state in zip(SYSLOG_DAEMONS, lines, strict=False) if state == "active"]
    written = [w for w in lines if w.startswith("/")]
    storage = effective(answers["config"], "Storage")
    said = (
        f"journald Storage={storage.value} (set in {storage.source or 'journald.conf'})"
        if storage
        else "journald Storage=auto (the default)"
    )
    found = []
    entries = answers["entries"].strip()
    if not (entries.isdigit() and int(entries)):
        found.append(
            f"this boot's journal is empty: {said}; nothing the clone logs can be read, now "
            "or later"
        )
    if not journal_files and not (daemons and written):
        syslog = (
            f"{', '.join(daemons)} runs but writes none of {', '.join(SYSLOG_FILES)}"
            if daemons
            else "no syslog daemon runs"
        )
        found.append(
            f"no log survives a reboot: no journal file for this machine under /var/log/journal "
            f"({said}; a missing /var/log/journal makes `auto` volatile) and {syslog}"
        )
    return found
