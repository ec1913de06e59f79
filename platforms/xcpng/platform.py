"""XCP-ng through XAPI: preflight, Packer variables, and the boot of a built artifact.

A boot imports the XVA (`task.create` + `PUT /import`), turns the imported template into a
startable VM, gives it a VIF on the configured network and its own NoCloud seed disk, starts
it, waits for an IP from guest metrics and an SSH banner, and on the way out (failure, Ctrl-C,
SIGTERM) removes the VM and every disk. Each object is written to the ledger before it exists.

The SSH port is 22 on a real pool; a test stand-in can set `xcpng_ssh_port` (setting) or
`XCPNG_SSH_PORT` (environment) to point the wait and known_hosts at another port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import XenAPI

from core import signals
from core.errors import ImageDefect, InfrastructureError, UsageError
from core.model import BootedVM, BuildResult, KeptVM, TemplateSpec
from core.platform import Started, booted
from core.redact import Redactor
from core.settings import Settings, XcpngConfig
from core.ssh import ssh_command
from core.trees import remove_trees
from diskformats.xva import XvaError
from diskformats.xva.writer import raw_to_xva
from platforms.kept import janitor_command, record_kept
from platforms.reach import Target
from platforms.seed import SEED_SIZE, Seed, make_seed
from platforms.xcpng import (
    build_password,
    guest,
    objects,
    plugin_access,
    pool_checks,
    xva_import,
)
from platforms.xcpng.client import (
    RetryPolicy,
    SessionRejected,
    UploadInterrupted,
    Xapi,
    describe,
    failure_code,
)
from platforms.xcpng.firmware import disk_firmware
from platforms.xcpng.ledger import LEDGER_NAME, Ledger
from platforms.xcpng.transfer import upload

log = logging.getLogger("platforms.xcpng")
MIN_FREE_MEMORY = 2 << 30  # a check VM needs 1-2 GiB; less free than this and boots will fail
VM_PREFIX = "golden"
BUILD_GRACE = 3600.0  # a build VM older than its build timeout plus this is a leftover
GROW_BYTES = 2 << 30  # clones boot on a system disk this much larger than the template's


@dataclass(frozen=True)
class _Launch:
    """A clone imported and powered on: what waiting for it needs."""

    vm: str
    uuid: str
    seed: Seed
    template_bytes: int
    deadline: float  # monotonic: the boot timeout counts from the power-on


def ledger_path(settings: Settings) -> Path:
    return settings.artifacts_dir / LEDGER_NAME


def connect(
    cfg: XcpngConfig, policy: RetryPolicy | None = None, redactor: Redactor | None = None
) -> Xapi:
    """A logged-in XAPI session to the configured pool."""
    missing = [
        env
        for value, env in (
            (cfg.url, "XCPNG_URL"),
            (cfg.username, "XCPNG_USERNAME"),
            (cfg.password, "XCPNG_PASSWORD"),
        )
        if not value
    ]
    if missing:
        raise UsageError(f"XCP-ng settings missing: {', '.join(missing)}; set them in the env")
    return Xapi(
        str(cfg.url),
        str(cfg.username),
        str(cfg.password),
        tls_verify=cfg.tls_verify,
        ca_bundle=cfg.ca_bundle,
        tls_fingerprints=cfg.tls_fingerprints,
        policy=policy,
        redactor=redactor,
    ).login()


class XcpngPlatform:
    name = "xcpng"
    has_xen = True

    def __init__(
        self,
        settings: Settings,
        run_id: str,
        *,
        redactor: Redactor | None = None,
        policy: RetryPolicy | None = None,
        ip_poll: float = 2.0,
        ssh_port: int | None = None,
        host_ports: dict[str, int] | None = None,
        login_check: bool = True,
    ):
        self.settings = settings
        # tests point the host ports at stand-ins
        self.host_ports = host_ports or dict(plugin_access.HOST_PORTS)
        self.run_id = run_id
        self.redactor = redactor or Redactor(settings.secrets())
        self.policy = policy or RetryPolicy()
        self.ip_poll = ip_poll
        self.ssh_port = ssh_port or settings.xcpng.ssh_port
        # A login with the seed's key ends the boot wait (tests with a banner-only stand-in
        # for sshd turn it off).
        self.login_check = login_check
        self.ledger = Ledger(ledger_path(settings), run_id)

    # -- preflight --------------------------------------------------------------------------
    def preflight(self, specs: Sequence[TemplateSpec] = (), building: bool = True) -> list[str]:
        """Every problem at once, one line each: the build password, the login (TLS included),
        what the Packer plugin needs (root, SSH and HTTPS to every host), and what the selected
        OSes need from this pool (pool_checks.py), then free memory."""
        password = os.environ.get(build_password.VARIABLE)
        problems: list[str] = []
        if password is not None and (problem := build_password.password_problem(password)):
            problems.append(problem)
        try:
            xapi = connect(self.settings.xcpng, self.policy, self.redactor)
        except (UsageError, InfrastructureError) as exc:
            return [*problems, str(exc)]
        try:
            for check in self._pool_checks(xapi, list(specs), building):
                try:
                    problems += check()
                except InfrastructureError as exc:
                    problems.append(str(exc))
                except (XenAPI.Failure, OSError) as exc:
                    problems.append(f"XCP-ng preflight failed: {xapi.redactor(describe(exc))}")
        finally:
            xapi.logout()
        return problems

    def _pool_checks(
        self, xapi: Xapi, specs: list[TemplateSpec], building: bool
    ) -> list[Callable[[], list[str]]]:
        cfg = self.settings.xcpng

        def access() -> list[str]:
            user = plugin_access.user_problem(xapi)
            hosts = plugin_access.pool_hosts(xapi)
            return [*([user] if user else []), *plugin_access.unreachable(hosts, self.host_ports)]

        def storage() -> list[str]:
            sr = objects.find_sr(xapi, cfg.sr)
            out = pool_checks.sr_room(
                xapi,
                sr,
                specs,
                building=building,
                floor=self.settings.min_free_disk,
                grow=GROW_BYTES,
            )
            return out + [p for p in [objects.sr_not_on_master(xapi, sr)] if p]

        def network() -> list[str]:
            problem = pool_checks.network_problem(xapi, objects.find_network(xapi, cfg.network))
            return [problem] if problem else []

        def for_the_builds() -> list[str]:
            if not building:
                return []
            version = pool_checks.pool_version(xapi)
            return pool_checks.clone_templates(xapi, specs, version) + pool_checks.tools_iso(
                xapi, specs
            )

        def memory() -> list[str]:
            free = max(
                int(xapi.call("host.compute_free_memory", h)) for h in xapi.call("host.get_all")
            )
            if free >= MIN_FREE_MEMORY:
                return []
            return [
                f"no host has {MIN_FREE_MEMORY >> 30} GiB of free memory (best: {free >> 20} "
                "MiB); stop some VMs"
            ]

        return [
            access,
            storage,
            network,
            for_the_builds,
            lambda: pool_checks.cpu_level(xapi, specs),
            memory,
        ]

    # -- build ---------------------------------------------------------------------------------
    def recipe_digest(self, spec: TemplateSpec) -> dict[str, str]:
        """Everything the pool build depends on is in the packer/ tree and the plugin pin."""
        return {}

    def vm_name(self, os_name: str) -> str:
        return f"{VM_PREFIX}-{os_name}-{self.run_id}"

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        """Packer's xenserver-iso variables. The build VM, its disk and its installer ISO carry
        the run id and an expiry (the VM in other_config, the VDIs in their names), so the
        janitor finds what a killed Packer left without the ledger; the ledger still notes the
        build first, for `cleanup --run-id`. The build password is random per build unless
        the operator set PKR_VAR_build_password (checked in preflight)."""
        url = urlsplit(str(self.settings.xcpng.url or ""))
        now = time.time()
        expires = now + self.settings.build_timeout + BUILD_GRACE
        self.ledger.record(
            "intent", "packer-vm", f"packer-vm:{spec.name}:{self.run_id}", os=spec.name
        )
        values = {
            "remote_host": url.hostname or "",
            "remote_username": self.settings.xcpng.username or "",
            "remote_password": self.settings.xcpng.password or "",
            "sr_name": self.settings.xcpng.sr or "",
            "sr_iso_name": self.settings.xcpng.sr or "",
            "network_name": self.settings.xcpng.network or "",
            "run_created": str(int(now)),
            "run_expires": str(int(expires)),
            "build_password": (
                os.environ.get(build_password.VARIABLE) or build_password.random_password()
            ),
        }
        log(f"xcpng: Packer builds {spec.name} on {url.hostname}, tagged with run {self.run_id}")
        return {k: v for k, v in values.items() if v}

    # -- boot ------------------------------------------------------------------------------------
    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        return booted(self.start(spec, build, workdir))

    @contextlib.contextmanager
    def start(self, spec: TemplateSpec, build: BuildResult, workdir: Path) -> Iterator[Started]:
        """Import and start a clone, and return while it boots: `ready()` waits for its
        address and SSH. On the way out remove it and every disk, unless the harness set
        `vm.keep`."""
        signals.install_sigterm_as_interrupt()
        if not build.artifact:
            raise UsageError(f"{spec.name}: the build produced no artifact to boot")
        workdir.mkdir(parents=True, exist_ok=True)
        name = f"{self.vm_name(spec.name)}-{secrets.token_hex(3)}"
        xapi = connect(self.settings.xcpng, self.policy, self.redactor)
        state: dict[str, Any] = {"vm": None, "vdis": [], "tasks": [], "keys": {}, "booted": None}
        try:
            launch = self._launch(
                xapi, spec=spec, build=build, workdir=workdir, name=name, state=state
            )

            def ready() -> BootedVM:
                state["booted"] = self._reach(xapi, launch, spec=spec, workdir=workdir, name=name)
                return state["booted"]

            yield Started(ready)
        finally:
            with signals.deferred():
                booted_vm: BootedVM | None = state["booted"]
                keep = bool(booted_vm is not None and booted_vm.keep and state["vm"])
                try:
                    if booted_vm is not None and keep:
                        booted_vm.kept = self._keep(xapi, booted_vm, state, workdir)
                    else:
                        self._tear_down(xapi, state, name)
                finally:
                    xapi.logout()
                    (workdir / "image.xva").unlink(missing_ok=True)
                    if not keep:
                        remove_trees([workdir])

    def _launch(
        self,
        xapi: Xapi,
        *,
        spec: TemplateSpec,
        build: BuildResult,
        workdir: Path,
        name: str,
        state: dict[str, Any],
    ) -> _Launch:
        """Import the artifact, prepare and start the VM: everything before the guest boots."""
        ttl = self.settings.keep_vm_ttl
        xva = self._as_xva(Path(str(build.artifact)), build.artifact_format, workdir, name)
        sr = objects.find_sr(xapi, self.settings.xcpng.sr)
        network = objects.find_network(xapi, self.settings.xcpng.network)
        vm = self._import(xapi, xva, sr, name=name, ttl=ttl, state=state)
        uuid = str(xapi.call("VM.get_uuid", vm))
        self._prepare(xapi, vm, network, name)
        template_bytes = self._grow_system_disk(xapi, vm, name)
        seed = make_seed(workdir / "seed", spec.name, self.run_id, instance_id=uuid)
        self._attach_seed(xapi, vm, sr, seed.image, name=name, ttl=ttl, state=state)
        self._start(xapi, vm, name)
        deadline = time.monotonic() + self.settings.boot_timeout
        return _Launch(vm, uuid, seed, template_bytes, deadline)

    def _reach(
        self, xapi: Xapi, launch: _Launch, *, spec: TemplateSpec, workdir: Path, name: str
    ) -> BootedVM:
        """The started VM's address and SSH (and a login with the seed's key)."""
        vm, seed = launch.vm, launch.seed
        address, address_at = self._wait_reachable(xapi, vm, name)
        booted_vm = BootedVM(
            os_name=spec.name,
            platform=self.name,
            address=address,
            port=self.ssh_port,
            user=seed.user,
            key_path=seed.key_path,
            known_hosts=seed.known_hosts(workdir / "known_hosts", address, self.ssh_port),
            instance_id=seed.instance_id,
            hostname=seed.hostname,
            marker=seed.marker,
            facts={
                "vm_ref": vm,
                "vm_uuid": launch.uuid,
                "vm_name": name,
                "guest_metrics": guest.guest_facts(xapi, vm),
                "template_disk_bytes": launch.template_bytes,
                "disk_grown_by": GROW_BYTES if launch.template_bytes else 0,
            },
        )
        if self.login_check:
            target = Target(seed.user, address, self.ssh_port, seed.key_path, booted_vm.known_hosts)
            left = max(launch.deadline - time.monotonic(), self.ip_poll)
            guest.wait_for_login(target, name, left, address_at, poll=self.ip_poll)
        return booted_vm

    def _wait_reachable(self, xapi: Xapi, vm: str, name: str) -> tuple[str, float]:
        """An IP from the guest tools (and when it came), then sshd on it, within one boot
        timeout."""
        timeout = self.settings.boot_timeout
        deadline = time.monotonic() + timeout
        address = guest.wait_for_ip(xapi, vm, name, timeout, poll=self.ip_poll)
        address_at = time.monotonic()
        log.info("%s: guest reports %s; waiting for SSH on port %d", name, address, self.ssh_port)
        left = max(deadline - time.monotonic(), self.ip_poll)
        guest.wait_for_ssh(address, self.ssh_port, name, left, poll=self.ip_poll)
        return address, address_at

    # -- steps -------------------------------------------------------------------------------------
    def _as_xva(self, artifact: Path, fmt: str | None, workdir: Path, name: str) -> Path:
        if not artifact.is_file():
            raise UsageError(f"artifact {artifact} does not exist; rebuild or fix --xva")
        if fmt == "xva" or (fmt is None and artifact.suffix == ".xva"):
            return artifact
        raw = artifact
        try:
            if fmt == "qcow2":
                raw = workdir / "disk.raw"
                subprocess.run(
                    ["qemu-img", "convert", "-O", "raw", str(artifact), str(raw)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            xva = workdir / "image.xva"
            firmware = disk_firmware(raw)
            log.info("%s: converting %s to XVA for import (%s boot)", name, artifact.name, firmware)
            raw_to_xva(raw, xva, name, firmware=firmware)
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.strip()
            raise ImageDefect(f"{artifact}: qemu-img cannot read it: {detail}") from None
        except XvaError as exc:
            raise ImageDefect(f"{artifact}: {exc}") from None
        finally:
            if raw != artifact:
                raw.unlink(missing_ok=True)
        return xva

    def _import(
        self, xapi: Xapi, xva: Path, sr: str, *, name: str, ttl: float, state: dict[str, Any]
    ) -> str:
        def started(task: str) -> None:
            state["tasks"].append(task)
            self._note(state, "intent", "vm", f"import:{task}", task=task, name=name)

        def finished(task: str, vm: str) -> None:
            state["vm"] = vm
            self._note(state, "created", "vm", f"import:{task}", ref=vm, name=name)
            state["tasks"].remove(task)

        def dropped(task: str, leftovers: list[str]) -> None:
            self._dropped(task, leftovers, state)

        vm = xva_import.import_xva(
            xapi,
            xva,
            sr,
            name=name,
            what=xva.name,
            started=started,
            finished=finished,
            dropped=dropped,
        )
        expires = time.time() + ttl
        objects.tag(xapi, "VM", vm, self.run_id, expires)
        for vdi in objects.disk_vdis(xapi, vm):
            objects.tag(xapi, "VDI", vdi, self.run_id, expires)
            state["vdis"].append(vdi)
            self._note(state, "created", "vdi", f"vdi:{vdi}", ref=vdi, vm=vm)
        return vm

    def _dropped(self, task: str, leftovers: list[str], state: dict[str, Any]) -> None:
        """An import attempt was undone: the ledger entry is closed only when nothing of it
        is left."""
        if task in state["tasks"]:
            state["tasks"].remove(task)
        if not leftovers:
            self.ledger.record("destroyed", "vm", f"import:{task}")

    def _note(self, state: dict[str, Any], what: str, kind: str, key: str, **fields: Any) -> None:
        self.ledger.record(what, kind, key, **fields)
        state["keys"][key] = kind

    def _prepare(self, xapi: Xapi, vm: str, network: str, name: str) -> None:
        """A startable VM: not a template, named for the run, one VIF on our network."""
        if xapi.call("VM.get_is_a_template", vm):
            xapi.call("VM.set_is_a_template", vm, False)
        xapi.call("VM.set_name_label", vm, name)
        for vif in xapi.call("VM.get_VIFs", vm):
            xapi.call("VIF.destroy", vif)
        xapi.call(
            "VIF.create",
            {
                "device": "0",
                "network": network,
                "VM": vm,
                "MAC": "",
                "MTU": "1500",
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            },
        )

    def _grow_system_disk(self, xapi: Xapi, vm: str, name: str) -> int:
        """Resize the imported system disk (userdevice 0) by GROW_BYTES before the first boot,
        as a deployment gives clones more room: the checks then see the root grow. Returns the
        template's disk size (0 when the VM has no disk)."""
        for vbd in xapi.call("VM.get_VBDs", vm):
            rec = xapi.call("VBD.get_record", vbd)
            if rec.get("type") != "Disk" or rec.get("VDI") == guest.NULL:
                continue
            if str(rec.get("userdevice")) != "0":
                continue
            size = int(xapi.call("VDI.get_virtual_size", rec["VDI"]))
            xapi.call("VDI.resize", rec["VDI"], str(size + GROW_BYTES))
            log.info("%s: system disk grown from %d to %d bytes", name, size, size + GROW_BYTES)
            return size
        return 0

    def _attach_seed(
        self,
        xapi: Xapi,
        vm: str,
        sr: str,
        image: Path,
        *,
        name: str,
        ttl: float,
        state: dict[str, Any],
    ) -> None:
        label = f"{name}-cidata"
        self._note(state, "intent", "vdi", f"seed:{label}", name=label)
        vdi = str(
            xapi.call(
                "VDI.create",
                {
                    "name_label": label,
                    "name_description": "NoCloud seed of a template check",
                    "SR": sr,
                    "virtual_size": str(SEED_SIZE),
                    "type": "user",
                    "sharable": False,
                    "read_only": False,
                    "other_config": {},
                    "xenstore_data": {},
                    "sm_config": {},
                    "tags": [],
                },
            )
        )
        state["vdis"].append(vdi)
        self._note(state, "created", "vdi", f"seed:{label}", ref=vdi, name=label)
        objects.tag(xapi, "VDI", vdi, self.run_id, time.time() + ttl)

        def send_seed() -> None:
            task = str(xapi.call("task.create", "xcpng-golden seed", label))
            try:
                upload(
                    xapi,
                    "/import_raw_vdi",
                    {"vdi": vdi, "format": "raw"},
                    image,
                    task,
                    label=f"seed {label}",
                )
            except SessionRejected:
                xapi.relogin()
                raise
            finally:
                objects.forget_task(xapi, task)

        try:
            xapi.attempt(f"seed {label}", send_seed)
        except (XenAPI.Failure, UploadInterrupted, SessionRejected, OSError, TimeoutError) as exc:
            raise InfrastructureError(
                f"{name}: upload of the seed disk failed: {xapi.redactor(describe(exc))}"
            ) from None
        used = {str(xapi.call("VBD.get_userdevice", vbd)) for vbd in xapi.call("VM.get_VBDs", vm)}
        device = next(str(n) for n in range(1, 16) if str(n) not in used)
        xapi.call(
            "VBD.create",
            {
                "VM": vm,
                "VDI": vdi,
                "userdevice": device,
                "bootable": False,
                "mode": "RO",
                "type": "Disk",
                "empty": False,
                "unpluggable": False,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            },
        )

    def _start(self, xapi: Xapi, vm: str, name: str) -> None:
        try:
            xapi.call("VM.start", vm, False, False)
        except XenAPI.Failure as exc:
            code = failure_code(exc)
            if code == "VM_BAD_POWER_STATE" and str(exc.details[-1]).lower() == "running":
                return  # started by a retried call whose answer was lost
            detail = xapi.redactor(describe(exc))
            raise InfrastructureError(f"{name}: VM.start failed: {detail}") from None

    def _keep(self, xapi: Xapi, vm: BootedVM, state: dict[str, Any], workdir: Path) -> KeptVM:
        """--keep-vm: new expiry tags on the VM and its disks, the ledger told, a record with
        the key beside it for the janitor."""
        expires = time.time() + self.settings.keep_vm_ttl
        for cls, ref in [("VM", state["vm"]), *(("VDI", v) for v in state["vdis"])]:
            objects.tag(xapi, cls, ref, self.run_id, expires, first=False)
        for key, kind in state["keys"].items():
            self.ledger.record("kept", kind, key, expires=expires)
        name = str(vm.facts["vm_name"])
        kept = KeptVM(
            name=workdir.name,
            os_name=vm.os_name,
            platform=self.name,
            run_id=self.run_id,
            folder=str(workdir),
            expires_at=expires,
            ssh=ssh_command(vm.user, vm.address, vm.port, vm.key_path, vm.known_hosts),
            stop=janitor_command(self.settings.artifacts_dir, workdir.name),
            details={"vm_uuid": vm.facts["vm_uuid"], "vm_name": name},
        )
        log.warning("%s: kept until %s", name, time.strftime("%H:%M UTC", time.gmtime(expires)))
        return record_kept(workdir, kept)

    def _tear_down(self, xapi: Xapi, state: dict[str, Any], name: str) -> None:
        """Remove the VM, every disk and every task this boot made; say what is left."""
        for task in list(state["tasks"]):
            self._dropped(task, xva_import.drop_import(xapi, task), state)
        vm = state["vm"]
        if vm:
            problems = objects.destroy_vm(xapi, vm, state["vdis"])
        else:
            problems = [p for vdi in state["vdis"] for p in objects.destroy_vdi(xapi, vdi)]
        if problems:
            raise InfrastructureError(
                f"{name}: teardown left objects behind ({'; '.join(problems)}); run "
                f"`xcpng-golden pool cleanup --run-id {self.run_id}`"
            )
        for key, kind in state["keys"].items():
            self.ledger.record("destroyed", kind, key)
