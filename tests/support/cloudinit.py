"""cloud-init's own `cloud-init schema`, run from Debian 13's cloud-init package on this host.

cloud-init is not on PyPI and installing Debian's package on a build machine would make it
configure that machine at boot, so the test command unpacks the trixie .deb (architecture
all, pure Python) into the image cache once and runs its command-line entry point with this
virtual environment's interpreter (the extra module cloud-init imports, configobj, is a dev
dependency). The package list comes from Debian's registry through a private apt state: the
host's apt configuration is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

from core.settings import Settings

SUITE = "trixie"
REGISTRY = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _tools_dir() -> Path:
    env = {k: v for k, v in os.environ.items() if k == "TEMPLATE_CACHE_DIR"}
    return Settings.from_env(env=env).cache_dir / "tools" / f"cloud-init-{SUITE}"


def _apt(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (state / "etc").mkdir(parents=True, exist_ok=True)
    sources = state / "etc" / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {REGISTRY} {SUITE} main\n")
    for sub in ("lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    options = [
        f"Dir::Etc::SourceList={sources}",
        "Dir::Etc::SourceParts=/dev/null",
        f"Dir::State::Lists={state / 'lists'}",
        f"Dir::Cache={state / 'cache'}",
        "Dir::State::Status=/dev/null",
        "APT::Architecture=amd64",
        "APT::Sandbox::User=root",
    ]
    argv = ["apt-get", "-q", *(x for o in options for x in ("-o", o)), *args]
    return subprocess.run(argv, cwd=state, capture_output=True, text=True, timeout=600)


def cloud_init_root() -> Path:
    """The unpacked cloud-init package (dist-packages folder), fetched on first use."""
    tools = _tools_dir()
    tools.parent.mkdir(parents=True, exist_ok=True)
    packages = tools / "usr" / "lib" / "python3" / "dist-packages"
    with FileLock(str(tools) + ".lock", timeout=900):
        if (packages / "cloudinit").is_dir():
            return packages
        with tempfile.TemporaryDirectory(dir=tools.parent, prefix=".tmp-cloud-init-") as tmp:
            state = Path(tmp)
            for step in (("update",), ("download", "cloud-init")):
                done = _apt(state, *step)
                if done.returncode != 0:
                    raise RuntimeError(
                        f"apt-get {' '.join(step)} for {SUITE}'s cloud-init failed: "
                        f"{done.stderr.strip()[-800:]}; the test needs Debian's registry "
                        f"({REGISTRY})"
                    )
            (deb,) = state.glob("cloud-init_*.deb")
            unpacked = state / "root"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            (unpacked / "VERSION").write_text(deb.name + "\n")
            unpacked.rename(tools)
    return packages


def cloud_init_version() -> str:
    cloud_init_root()
    return (_tools_dir() / "VERSION").read_text().strip()


def schema_check(config: Path) -> subprocess.CompletedProcess[str]:
    """`cloud-init schema -c CONFIG --annotate`: exit 0 when valid, 1 with annotated errors."""
    code = (
        "import sys; from cloudinit.cmd.main import main; "
        "sys.argv = ['cloud-init', 'schema', '-c', sys.argv[1], '--annotate']; sys.exit(main())"
    )
    env = {**os.environ, "PYTHONPATH": str(cloud_init_root())}
    return subprocess.run(
        [sys.executable, "-c", code, str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
