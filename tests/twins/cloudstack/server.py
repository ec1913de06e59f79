"""The twin's HTTP API: `GET` or `POST /client/api`, CloudStack's JSON answers and error codes.

Commands: listZones, listOsTypes, registerTemplate, listTemplates, updateTemplatePermissions,
deleteTemplate (asynchronous), createTags (asynchronous), queryAsyncJobResult. Every request is
verified first (signature.py): a refusal is `401 {"<command>response": {"uuidList": [],
"errorcode": 401, "errortext": "unable to verify user credentials and/or request signature"}}`.
A parameter error is 431 with cserrorcode 4350, as ParamProcessWorker and the template manager
word them; a registration's URL is checked as UriUtils.validateUrl and checkUrlExistence do
(scheme, the format's file extensions, a HEAD request); a registered template downloads in every
zone on its own thread (downloads.py).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.twins.cloudstack.downloads import run_download
from tests.twins.cloudstack.model import InZone, Job, OsType, Template, Zone, now_text
from tests.twins.cloudstack.signature import UNVERIFIED, verify

API_PATH = "/client/api"
PARAM_ERROR, INTERNAL_ERROR = 431, 530
CS_PARAM, CS_SERVER = 4350, 9999
FORMAT_EXTENSIONS = {"VHD": (".vhd", ".vhd.bz2", ".vhd.gz", ".vhd.zip")}
DEFAULT_OS_TYPES = (
    ("Debian GNU/Linux 12 (64-bit)", "Debian"),
    ("Debian GNU/Linux 11 (64-bit)", "Debian"),
    ("Ubuntu 22.04 LTS", "Ubuntu"),
    ("Ubuntu 24.04 LTS", "Ubuntu"),
    ("Rocky Linux 9", "Rocky Linux"),
    ("AlmaLinux 9", "AlmaLinux"),
)
ASYNC = {"deleteTemplate": "DeleteTemplateCmd", "createTags": "CreateTagsCmd"}


class ApiError(Exception):
    def __init__(self, code: int, text: str, cs_code: int = CS_PARAM):
        super().__init__(text)
        self.code, self.text, self.cs_code = code, text, cs_code


@dataclass
class Faults:
    """What to break; tests set these on `twin.faults`."""

    wrong_key: bool = False  # the server holds another secret for the key (a rotated key)
    clock_skew_s: float = 0.0  # the server's clock runs ahead: signatures have expired
    enforce_timestamps: bool = False  # enforce.post.requests.and.timestamps
    download_failure: bool = False  # no zone's secondary storage can reach the URL
    checksum_mismatch: bool = False  # what the secondary storage stored differs from the URL's
    slow_zones: dict[str, float] = field(default_factory=dict)  # zone name -> bytes per second


class CloudStackTwin:
    """A management server on 127.0.0.1; `with CloudStackTwin(...) as twin:` starts and stops it."""

    def __init__(
        self,
        storage: Path,
        *,
        zones: tuple[str, ...] = ("zone1", "zone2"),
        os_types: tuple[tuple[str, str], ...] = DEFAULT_OS_TYPES,
        api_key: str = "twin-api-key-0123456789",
        secret_key: str = "twin-secret-key/0123456789+abcdef",
        allow_loopback_urls: bool = True,
    ):
        self.storage = storage
        self.zones = [Zone(name) for name in zones]
        self.os_types = [OsType(d, c) for d, c in os_types]
        self.api_key, self.secret_key = api_key, secret_key
        # UriUtils.validateUrl refuses loopback hosts; the tests' web server can only be there
        self.allow_loopback_urls = allow_loopback_urls
        self.faults = Faults()
        self.templates: dict[str, Template] = {}
        self.jobs: dict[str, Job] = {}
        self.calls: list[str] = []  # commands in order, for tests
        self.refusals: list[str] = []  # why requests were refused (CloudStack's log)
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> CloudStackTwin:
        self.storage.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self.templates.values():
            t.cancelled.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PATH}"

    def env(self, zones: str = "zone1,zone2") -> dict[str, str]:
        return {
            "CLOUDSTACK_ENDPOINT": self.endpoint,
            "CLOUDSTACK_API_KEY": self.api_key,
            "CLOUDSTACK_SECRET_KEY": self.secret_key,
            "CLOUDSTACK_ZONES": zones,
        }

    def live(self) -> list[Template]:
        with self.lock:
            return [t for t in self.templates.values() if not t.removed]

    # -- requests ----------------------------------------------------------------------------
    def handle(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        command = params.get("command", "")
        name = f"{command.lower()}response" if command in COMMANDS else "errorresponse"
        now = datetime.now(UTC) + timedelta(seconds=self.faults.clock_skew_s)
        secret = "not-" + self.secret_key if self.faults.wrong_key else self.secret_key
        why = (
            f"the given command {command!r} does not exist"
            if command not in COMMANDS
            else verify(params, {self.api_key: secret}, now, self.faults.enforce_timestamps)
        )
        if why:
            self.refusals.append(why)
            return 401, {name: {"uuidList": [], "errorcode": 401, "errortext": UNVERIFIED}}
        self.calls.append(command)
        try:
            with self.lock:
                body = COMMANDS[command](self, params)
        except ApiError as e:
            err = {"uuidList": [], "errorcode": e.code, "cserrorcode": e.cs_code,
                   "errortext": e.text}  # fmt: skip
            return e.code, {name: err}
        return 200, {name: body}

    # -- helpers -----------------------------------------------------------------------------
    def _async(self, cmd: str, instance: str | None, work: Callable[[], dict[str, Any]]) -> Job:
        job = Job(f"org.apache.cloudstack.api.command.user.{ASYNC[cmd]}", "acct-1",
                  "Template" if instance else None, instance)  # fmt: skip
        self.jobs[job.id] = job

        def run() -> None:
            time.sleep(0.2)
            try:
                result, code, status = work(), 0, 1
            except ApiError as e:
                result, code, status = {"errorcode": e.code, "errortext": e.text}, e.code, 2
            with self.lock:
                job.result, job.result_code, job.status = result, code, status
                job.completed = now_text()

        threading.Thread(target=run, daemon=True).start()
        return job

    def _start_download(self, template: Template, copy: InZone) -> None:
        threading.Thread(
            target=run_download,
            args=(template, copy, self.faults, self.storage),
            daemon=True,
            name=f"download-{template.name}-{copy.zone.name}",
        ).start()


# -- commands ---------------------------------------------------------------------------------
def _required(cmd: str, params: dict[str, str], *names: str) -> None:
    for n in names:
        if not params.get(n):
            raise ApiError(PARAM_ERROR, f"Unable to execute API command {cmd.lower()} due to "
                                        f"missing parameter {n}")  # fmt: skip


def _bad_uuid(cmd: str, name: str, value: str) -> ApiError:
    return ApiError(
        PARAM_ERROR,
        f"Unable to execute API command {cmd.lower()} due to invalid value. Invalid parameter "
        f"{name} value={value} due to incorrect long value format, or entity does not exist or "
        "due to incorrect parameter annotation for the field in api cmd class.",
    )


def _bool(params: dict[str, str], name: str, default: bool) -> bool:
    value = params.get(name)
    return default if value is None else value.lower() == "true"


def _listing(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(items), key: items} if items else {}


def _tags(params: dict[str, str]) -> list[tuple[str, str]]:
    tags = []
    for i in range(64):
        key = params.get(f"tags[{i}].key")
        if key is None:
            break
        tags.append((key, params.get(f"tags[{i}].value", "")))
    return tags


def list_zones(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    zones = [
        z for z in twin.zones if p.get("name") in (None, z.name) and p.get("id") in (None, z.id)
    ]
    return _listing("zone", [z.json() for z in zones])


def list_os_types(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    # ManagementServerImpl.listGuestOSByCriteria: description LIKE %...%
    want = (p.get("description") or "").lower()
    found = [o for o in twin.os_types if want in o.description.lower()]
    found = [o for o in found if p.get("id") in (None, o.id)]
    return _listing("ostype", [o.json() for o in found])


def _check_url(twin: CloudStackTwin, fmt: str, url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() not in ("http", "https"):
        raise ApiError(PARAM_ERROR, f"Unsupported scheme for url: {url}")
    if parsed.hostname in ("127.0.0.1", "localhost", "::1") and not twin.allow_loopback_urls:
        raise ApiError(PARAM_ERROR, "Illegal host specified in url")
    if not parsed.path.lower().endswith(FORMAT_EXTENSIONS.get(fmt, ())):
        raise ApiError(PARAM_ERROR, f"Please specify a valid URL. URL:{parsed.path} is an invalid "
                                    f"for the format {fmt.lower()}")  # fmt: skip
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (OSError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        raise ApiError(PARAM_ERROR, f"Cannot reach URL: {url} due to: {reason}") from None
    if status != 200:
        raise ApiError(PARAM_ERROR, f"Invalid URL: {url}")


def register_template(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    cmd = "registerTemplate"
    _required(cmd, p, "format", "hypervisor", "name", "url")
    if p.get("zoneid") and p.get("zoneids"):
        raise ApiError(PARAM_ERROR, "Both zoneid and zoneids cannot be specified at the same time")
    if not (p.get("zoneid") or p.get("zoneids")):
        raise ApiError(PARAM_ERROR, "Either zoneid or zoneids is required. Both cannot be null.")
    if not p.get("ostypeid"):
        raise ApiError(PARAM_ERROR, "Please provide a guest OS type")
    ostype = next((o for o in twin.os_types if o.id == p["ostypeid"]), None)
    if ostype is None:
        raise _bad_uuid(cmd, "ostypeid", p["ostypeid"])
    wanted = (p.get("zoneids") or p.get("zoneid") or "").split(",")
    by_id = {z.id: z for z in twin.zones}
    for zid in wanted:
        if zid not in by_id:
            raise _bad_uuid(cmd, "zoneids" if p.get("zoneids") else "zoneid", zid)
    fmt = p["format"].upper()
    if fmt not in ("VHD", "QCOW2", "RAW", "OVA"):
        raise ApiError(PARAM_ERROR, f"Image format: {p['format']} is incorrect. Supported formats "
                                    "are QCOW2, RAW, VHD, OVA")  # fmt: skip
    _check_url(twin, fmt, p["url"])
    template = Template(
        name=p["name"],
        displaytext=p.get("displaytext") or p["name"],
        ostype=ostype,
        url=p["url"],
        checksum=p.get("checksum"),
        format=fmt,
        hypervisor=p["hypervisor"],
        passwordenabled=_bool(p, "passwordenabled", False),
        sshkeyenabled=_bool(p, "sshkeyenabled", False),
        ispublic=_bool(p, "ispublic", True),
        isfeatured=_bool(p, "isfeatured", False),
        isextractable=_bool(p, "isextractable", False),
        requireshvm=_bool(p, "requireshvm", True),
        account="admin",
    )
    for zid in wanted:
        template.zones[zid] = InZone(by_id[zid])
    twin.templates[template.id] = template
    for copy in template.zones.values():
        twin._start_download(template, copy)
    return _listing("template", [template.json(c) for c in template.zones.values()])


def list_templates(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    _required("listTemplates", p, "templatefilter")
    tags = _tags(p)
    rows = []
    for t in twin.live():
        if p.get("id") not in (None, t.id) or p.get("name") not in (None, t.name):
            continue
        if p["templatefilter"] == "featured" and not t.isfeatured:
            continue
        if any(tag not in t.tags for tag in tags):
            continue
        rows += [t.json(c) for c in t.zones.values() if p.get("zoneid") in (None, c.zone.id)]
    return _listing("template", rows)


def _template(twin: CloudStackTwin, cmd: str, template_id: str | None) -> Template:
    t = twin.templates.get(template_id or "")
    if t is None or t.removed:
        raise _bad_uuid(cmd, "id", template_id or "")
    return t


def update_template_permissions(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    _required("updateTemplatePermissions", p, "id")
    t = _template(twin, "updateTemplatePermissions", p["id"])
    t.isfeatured = _bool(p, "isfeatured", t.isfeatured)
    t.ispublic = _bool(p, "ispublic", t.ispublic)
    return {"success": True}


def delete_template(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    _required("deleteTemplate", p, "id")
    t = _template(twin, "deleteTemplate", p["id"])

    def work() -> dict[str, Any]:
        with twin.lock:
            t.removed = True
            t.cancelled.set()
        return {"success": True}

    return {"jobid": twin._async("deleteTemplate", t.id, work).id}


def create_tags(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    _required("createTags", p, "resourceids", "resourcetype")
    if p["resourcetype"] != "Template":
        raise ApiError(PARAM_ERROR, f"Invalid resource type {p['resourcetype']}")
    targets = [_template(twin, "createTags", i) for i in p["resourceids"].split(",")]
    tags = _tags(p)

    def work() -> dict[str, Any]:
        with twin.lock:
            for t in targets:
                for tag in tags:
                    if any(k == tag[0] for k, _ in t.tags):
                        raise ApiError(INTERNAL_ERROR, f"tag {tag[0]} already on resource id "
                                                       f"{t.id}")  # fmt: skip
                t.tags += tags
        return {"success": True}

    return {"jobid": twin._async("createTags", None, work).id}


def query_async_job_result(twin: CloudStackTwin, p: dict[str, str]) -> dict[str, Any]:
    _required("queryAsyncJobResult", p, "jobid")
    job = twin.jobs.get(p["jobid"])
    if job is None:
        raise _bad_uuid("queryAsyncJobResult", "jobid", p["jobid"])
    return job.json()


COMMANDS: dict[str, Callable[[CloudStackTwin, dict[str, str]], dict[str, Any]]] = {
    "listZones": list_zones,
    "listOsTypes": list_os_types,
    "registerTemplate": register_template,
    "listTemplates": list_templates,
    "updateTemplatePermissions": update_template_permissions,
    "deleteTemplate": delete_template,
    "createTags": create_tags,
    "queryAsyncJobResult": query_async_job_result,
}


def _handler(twin: CloudStackTwin) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._api(urllib.parse.urlparse(self.path).query)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            query = urllib.parse.urlparse(self.path).query
            self._api("&".join(x for x in (query, body) if x))

        def _api(self, query: str) -> None:
            if urllib.parse.urlparse(self.path).path != API_PATH:
                self.send_error(404)
                return
            params: dict[str, str] = {}
            for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
                params.setdefault(name, value)  # a repeated name: the first value, as CloudStack
            status, body = twin.handle(params)
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
