"""The SSH client a clone ships, as OpenSSH itself resolves it (`ssh -G`), against OpenSSH's
own defaults (`ssh -F /dev/null -G`).

Every admin who logs into a clone and hops on from there uses this client: a system-wide
`StrictHostKeyChecking no` or `ForwardAgent yes` in the template is a weakness of every clone.
The client is asked, not its files parsed: `ssh -G` applies /etc/ssh/ssh_config, its
`Include`s (ssh_config.d), the user's ~/.ssh/config and every `Host`/`Match` block that matches
the host asked for. It is asked as root, as the check user (whose ~/.ssh came from /etc/skel,
as every user cloud-init creates) and for /etc/skel/.ssh/config alone (`ssh -F`, as root:
what every later user starts with, whatever its mode), for a
generic host and for one host and user that match each `Host` and `Match` block of every file
ssh read (`ssh -vvv -G` names them, includes followed). All of it in one shell run on the
clone (`script`); the host names are picked there by awk, and `samples` picks them again here
from the files' text, so a block the shell missed fails the check instead of passing unseen.

A weakening is a value looser than OpenSSH's default: host keys not checked
(StrictHostKeyChecking no/off, UserKnownHostsFile /dev/null, NoHostAuthenticationForLocalhost,
a KnownHostsCommand, VerifyHostKeyDNS), credentials handed on (ForwardAgent,
GSSAPIDelegateCredentials, ForwardX11), commands run by the client (ProxyCommand, ProxyJump,
LocalCommand with PermitLocalCommand, a PKCS#11 or security-key provider), host-based trust
(HostbasedAuthentication, EnableSSHKeysign), GatewayPorts, a smaller RequiredRSASize, and any
cipher, key exchange, MAC, host-key, public-key, CA or host-based algorithm beyond the defaults
(`+ssh-rsa`, CBC ciphers, diffie-hellman-group1-sha1). `StrictHostKeyChecking accept-new` is
allowed (docs/checks/trust.md: it still refuses a changed key; OpenSSH's `ask` is trust on
first use too).
Values of commands are never printed: they may hold a secret.

Pure but for the shell text; unit-tested in tests/unit/test_trust_units.py.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

PROBE = "probe.invalid"  # a host no block names by accident (RFC 6761's .invalid)
SKEL_CONFIG = "/etc/skel/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
WHO = {"root": "root", "user": "the check user", "skel": "a new user (/etc/skel)"}

ALGORITHMS = (
    "ciphers",
    "kexalgorithms",
    "macs",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
)
# keyword -> (is this effective value a weakening?, why it matters)
SWITCHES: dict[str, tuple[frozenset[str], str]] = {
    "stricthostkeychecking": (
        frozenset({"false", "no", "off"}),
        "any host key is accepted, changed ones too (a man in the middle goes unnoticed)",
    ),
    "forwardagent": (
        frozenset({"yes", "true"}),
        "the agent of whoever connects is lent to every server reached",
    ),
    "forwardx11": (frozenset({"yes", "true"}), "every server reached gets the user's display"),
    "gssapidelegatecredentials": (
        frozenset({"yes", "true"}),
        "Kerberos tickets are handed to every server",
    ),
    "permitlocalcommand": (
        frozenset({"yes", "true"}),
        "LocalCommand runs on this machine after each connection",
    ),
    "nohostauthenticationforlocalhost": (
        frozenset({"yes", "true"}),
        "host keys of localhost (tunnels) are not checked",
    ),
    "hostbasedauthentication": (
        frozenset({"yes", "true"}),
        "the clone's host key logs its users in elsewhere",
    ),
    "enablesshkeysign": (
        frozenset({"yes", "true"}),
        "ssh-keysign signs with the clone's host key for any user",
    ),
    "verifyhostkeydns": (
        frozenset({"yes", "true", "ask"}),
        "host keys are taken from DNS (SSHFP), safe only with DNSSEC",
    ),
    "gatewayports": (
        frozenset({"yes", "true"}),
        "forwarded local ports listen for the whole network",
    ),
}
# Set at all (ssh -G prints them only when set): the client runs or loads something.
COMMANDS = {
    "proxycommand": "a command runs for every connection",
    "proxyjump": "connections go through another host",
    "localcommand": "a command runs on this machine after each connection",
    "knownhostscommand": "a command supplies the host keys to trust",
    "pkcs11provider": "a PKCS#11 library is loaded into ssh",
    "remotecommand": "a command runs on every server instead of the user's shell",
}


def parse_g(text: str) -> dict[str, str]:
    """`ssh -G` output -> {keyword: value}; repeated keywords are joined by newlines."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        key, _, value = raw.strip().partition(" ")
        if not key:
            continue
        key = key.lower()
        out[key] = f"{out[key]}\n{value}" if key in out else value
    return out


# systemd's ssh proxy (systemd >= 256, Debian 13's 20-systemd-ssh-proxy.conf): names that no
# network resolves (".host", "unix/PATH", "vsock/CID", "vsock-mux/PATH", "machine/NAME") reach
# a local socket or VM through AF_UNIX/AF_VSOCK, where a host key proves nothing; systemd turns
# host-key checks off for them. Accepted only with systemd's own proxy as the command, so a
# block that sends such a name anywhere else is still judged in full.
LOCAL_TRANSPORT = re.compile(r"^(\.host|(unix|vsock|vsock-mux|machine)/.*)$")
SYSTEMD_SSH_PROXY = re.compile(r"^(/usr)?/lib/systemd/systemd-ssh-proxy(\s|$)")
LOCAL_TRANSPORT_KEYS = ("proxycommand", "stricthostkeychecking", "userknownhostsfile")


def local_transport(host: str, eff: dict[str, str]) -> bool:
    """A connection systemd's ssh proxy carries to a local socket, never over a network."""
    return bool(
        LOCAL_TRANSPORT.match(host) and SYSTEMD_SSH_PROXY.match(eff.get("proxycommand", ""))
    )


def weakenings(eff: dict[str, str], default: dict[str, str], host: str = "") -> list[str]:
    """What `eff` (one `ssh -G` for `host`) loosens against `default` (`ssh -F /dev/null -G`)."""
    found = _weakenings(eff, default)
    if host and local_transport(host, eff):
        found = [f for f in found if not f.startswith(LOCAL_TRANSPORT_KEYS)]
    return found


def _weakenings(eff: dict[str, str], default: dict[str, str]) -> list[str]:
    found = []
    for key, (bad, why) in SWITCHES.items():
        value = eff.get(key, "").lower()
        if value in bad and value != default.get(key, "").lower():
            found.append(f"{key} {value}: {why}")
    if "/dev/null" in eff.get("userknownhostsfile", "").split():
        found.append("userknownhostsfile /dev/null: no host key is ever remembered or checked")
    for key, why in COMMANDS.items():
        if eff.get(key, "none").lower() != "none" and key not in default:
            found.append(f"{key} set (value not shown): {why}")
    provider = eff.get("securitykeyprovider", "internal")
    if provider != default.get("securitykeyprovider", "internal"):
        found.append("securitykeyprovider set (value not shown): a library is loaded into ssh")
    rsa, rsa_default = eff.get("requiredrsasize", ""), default.get("requiredrsasize", "")
    if rsa.isdigit() and rsa_default.isdigit() and int(rsa) < int(rsa_default):
        found.append(f"requiredrsasize {rsa}: RSA keys shorter than {rsa_default} bits accepted")
    for key in ALGORITHMS:
        allowed = set(default.get(key, "").split(","))
        extra = [a for a in eff.get(key, "").split(",") if a and a not in allowed]
        if extra and key in default:
            found.append(f"{key} adds {', '.join(extra)} beyond OpenSSH's defaults")
    return found


# -- which hosts to ask for -----------------------------------------------------------------------


def _sample(pattern_list: str) -> str | None:
    """A name matching the first non-negated pattern of a comma list (wildcards -> x)."""
    for p in pattern_list.split(","):
        if p and not p.startswith("!"):
            return re.sub(r"[*?]", "x", p)
    return None


def _words(line: str) -> list[str]:
    line = line.split("#", 1)[0].replace('"', "")
    line = re.sub(r"^(\s*[A-Za-z]+)\s*=\s*", r"\1 ", line)
    return line.split()


def samples(text: str) -> set[tuple[str, str]]:
    """(host, user or "-") connections that satisfy each Host and Match block of one file: the
    same choice the awk of `script` makes on the clone."""
    out: set[tuple[str, str]] = set()
    for raw in text.splitlines():
        words = _words(raw)
        if not words:
            continue
        keyword = words[0].lower()
        if keyword == "host":
            for p in words[1:]:
                if p.startswith("!") or p == "*":
                    continue
                out.add((re.sub(r"[*?]", "x", p), "-"))
        elif keyword == "match":
            host = user = None
            i = 1
            while i < len(words):
                criterion = words[i].lower()
                if criterion in ("all", "canonical", "final"):
                    i += 1
                    continue
                arg = words[i + 1] if i + 1 < len(words) else ""
                i += 2
                if criterion in ("host", "originalhost") and host is None:
                    host = _sample(arg)
                elif criterion == "user" and user is None:
                    user = _sample(arg)
            out.add((host or PROBE, user or "-"))
    return out


# awk, once over every file ssh read: each file's text in a section of its own (on stdout), and
# a host and user for each Host/Match block (to /dev/fd/3, which the shell reads back).
_AWK = r"""
function first(list,   n, l, i, p) {
  n = split(list, l, ",")
  for (i = 1; i <= n; i++) {
    p = l[i]; if (p != "" && p !~ /^!/) { gsub(/[*?]/, "x", p); return p }
  }
  return ""
}
FNR == 1 { print B, "file", FILENAME }
{ print }
{
  sub(/#.*/, ""); gsub(/"/, "")
  if (match($0, /^[ \t]*[A-Za-z]+[ \t]*=[ \t]*/)) {
    k = $0; sub(/[ \t]*=.*/, "", k); $0 = k " " substr($0, RLENGTH + 1)
  }
  $0 = $0
  k = tolower($1)
  if (k == "host") {
    for (i = 2; i <= NF; i++) {
      p = $i; if (p ~ /^!/ || p == "*") continue; gsub(/[*?]/, "x", p); print p, "-" > OUT
    }
  } else if (k == "match") {
    h = ""; u = ""; i = 2
    while (i <= NF) {
      c = tolower($i)
      if (c == "all" || c == "canonical" || c == "final") { i++; continue }
      a = $(i + 1); i += 2
      if ((c == "host" || c == "originalhost") && h == "") h = first(a)
      else if (c == "user" && u == "") u = first(a)
    }
    print (h == "" ? probe : h), (u == "" ? "-" : u) > OUT
  }
}
"""


def script(boundary: str, user: str, skel: str = SKEL_CONFIG) -> str:
    """The shell run on the clone (as root). For each kind of user, `ssh -vvv -G` of the
    generic host (its settings on stdout, the files it read in the debug lines); then the text
    of every file read and `ssh -G` for every sampled block, each in a section of raw lines
    under a `<boundary> ...` line (the boundary is random: no file can forge one). Few
    process starts: under TCG each costs most of the check's time."""
    b, u, k = shlex.quote(boundary), shlex.quote(user), shlex.quote(skel)
    return f"""
B={b}; U={u}; P={PROBE}; SKEL={k}; CR=$(printf '\\r')
sec() {{ printf '%s %s\\n' "$B" "$*"; }}
g() {{ who=$1; shift
  case $who in
    root) ssh "$@" </dev/null ;;
    user) runuser -u "$U" -- ssh "$@" </dev/null ;;
    skel) ssh -F "$SKEL" "$@" </dev/null ;;
  esac; }}
whos="root user"; [ -f "$SKEL" ] && whos="$whos skel"
files=""
for who in $whos; do
  out=$(g "$who" -vvv -G "$P" 2>&1)
  sec G "$who" "$P" - "$?"; printf '%s\\n' "$out"
  files="$files
$(printf '%s\\n' "$out" | while IFS= read -r line; do
    case $line in "debug1: Reading configuration data "*)
      f=${{line#debug1: Reading configuration data }}; echo "${{f%"$CR"}}";;
    esac; done)"
done
exec 4>&1
set -f; set -- $files; set +f
hosts=""
[ $# -gt 0 ] &&
  hosts=$(awk -v B="$B" -v probe="$P" -v OUT=/dev/fd/3 {shlex.quote(_AWK)} "$@" 3>&1 1>&4)
printf '%s\\n' "$hosts" | sort -u | while read -r h l; do
  [ -n "$h" ] && [ "$h $l" != "$P -" ] || continue
  for who in $whos; do
    if [ "$l" = - ]; then out=$(g "$who" -G "$h" 2>&1)
    else out=$(g "$who" -G -l "$l" "$h" 2>&1); fi
    sec G "$who" "$h" "$l" "$?"; printf '%s\\n' "$out"
  done
done
"""


@dataclass(frozen=True)
class Run:
    who: str  # root, user, skel
    host: str
    user: str  # "-": the default login name
    rc: int
    output: str


@dataclass(frozen=True)
class Report:
    files: dict[str, list[str]]  # who -> the files ssh read
    texts: dict[str, str]  # path -> text
    runs: list[Run]


_DEBUG = ("debug1:", "debug2:", "debug3:", "OpenSSH_", "Pseudo-terminal")


def parse_report(out: str, boundary: str) -> Report:
    """The sections of `script`'s output: `G` (an `ssh -G` run: its settings, and from its
    debug lines the files ssh read) and `file` (a file's text)."""
    files: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    runs: list[Run] = []
    head: list[str] | None = None
    body: list[str] = []

    def close() -> None:
        if head is None:
            return
        if head[1] == "file":
            texts[" ".join(head[2:])] = "\n".join(body) + "\n"
        elif head[1] == "G" and len(head) == 6:
            who, host, user, rc = head[2], head[3], head[4], int(head[5])
            settings = [line for line in body if not line.startswith(_DEBUG)]
            runs.append(Run(who, host, user, rc, "\n".join(settings)))
            if host == PROBE and user == "-":
                prefix = "debug1: Reading configuration data "
                files[who] = [
                    line[len(prefix) :].strip() for line in body if line.startswith(prefix)
                ]

    for line in out.split("\n"):
        if line.startswith(boundary + " "):
            close()
            head, body = line.split(" "), []
        elif head is not None:
            body.append(line)
    close()
    return Report(files, texts, runs)


def unasked(report: Report) -> list[str]:
    """Files ssh read whose text did not come back, and blocks of those files that no `ssh -G`
    run answered for (`samples` against what the shell asked)."""
    asked = {(r.who, r.host, r.user) for r in report.runs}
    missing = [
        f"{path} (ssh read it; its text did not come back)"
        for path in sorted({p for paths in report.files.values() for p in paths})
        if path not in report.texts
    ]
    for who, paths in report.files.items():
        wanted = {(PROBE, "-")}
        for path in paths:
            wanted |= samples(report.texts.get(path, ""))
        for host, user in sorted(wanted - {(h, u) for w, h, u in asked if w == who}):
            missing.append(
                f"{WHO.get(who, who)}: host {host}" + (f" user {user}" if user != "-" else "")
            )
    return missing
