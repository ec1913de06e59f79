"""The twin's state: zones, OS types, templates per zone, tags and asynchronous jobs."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

NOT_DOWNLOADED = "NOT_DOWNLOADED"
IN_PROGRESS = "DOWNLOAD_IN_PROGRESS"
DOWNLOADED = "DOWNLOADED"
ERROR = "DOWNLOAD_ERROR"


def now_text(epoch: float | None = None) -> str:
    """CloudStack's date format in responses: yyyy-MM-dd'T'HH:mm:ssZ."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch or time.time()))


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Zone:
    name: str
    id: str = field(default_factory=new_id)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "networktype": "Advanced",
            "allocationstate": "Enabled",
            "securitygroupsenabled": False,
            "localstorageenabled": False,
            "dhcpprovider": "VirtualRouter",
            "tags": [],
        }


@dataclass
class OsType:
    description: str
    category: str
    id: str = field(default_factory=new_id)
    category_id: str = field(default_factory=new_id)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.description,
            "description": self.description,
            "oscategoryid": self.category_id,
            "oscategoryname": self.category,
            "isuserdefined": False,
            "fordisplay": True,
        }


@dataclass
class InZone:
    """A template's copy on one zone's secondary storage (template_store_ref)."""

    zone: Zone
    state: str = NOT_DOWNLOADED
    percent: int = 0
    error: str | None = None
    size: int = 0
    physical_size: int = 0

    def status(self) -> str:
        """TemplateJoinDaoImpl.getTemplateStatus."""
        if self.state == DOWNLOADED:
            return "Download Complete"
        if self.state == IN_PROGRESS:
            return "Installing Template" if self.percent == 100 else f"{self.percent}% Downloaded"
        if self.error is None:
            return "Processing" if self.state == NOT_DOWNLOADED else self.state
        return self.error


@dataclass
class Template:
    name: str
    displaytext: str
    ostype: OsType
    url: str
    checksum: str | None
    format: str
    hypervisor: str
    passwordenabled: bool
    sshkeyenabled: bool
    ispublic: bool
    isfeatured: bool
    isextractable: bool
    requireshvm: bool
    account: str
    zones: dict[str, InZone] = field(default_factory=dict)
    tags: list[tuple[str, str]] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created: str = field(default_factory=now_text)
    removed: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)

    def json(self, copy: InZone) -> dict[str, Any]:
        """One row of listTemplates/registerTemplate: a template in one zone (template_view)."""
        return {
            "id": self.id,
            "name": self.name,
            "displaytext": self.displaytext,
            "ispublic": self.ispublic,
            "created": self.created,
            "isready": copy.state == DOWNLOADED,
            "passwordenabled": self.passwordenabled,
            "format": self.format,
            "isfeatured": self.isfeatured,
            "crossZones": False,
            "ostypeid": self.ostype.id,
            "ostypename": self.ostype.description,
            "account": self.account,
            "zoneid": copy.zone.id,
            "zonename": copy.zone.name,
            "status": copy.status(),
            "size": copy.size,
            "physicalsize": copy.physical_size,
            "templatetype": "USER",
            "hypervisor": self.hypervisor,
            "domain": "ROOT",
            "domainid": "d0000000-0000-0000-0000-000000000001",
            "isextractable": self.isextractable,
            "checksum": self.checksum,
            "sshkeyenabled": self.sshkeyenabled,
            "isdynamicallyscalable": False,
            "directdownload": False,
            "deployasis": False,
            "requireshvm": self.requireshvm,
            "url": self.url,
            "tags": [
                {
                    "key": k,
                    "value": v,
                    "resourcetype": "Template",
                    "resourceid": self.id,
                    "account": self.account,
                    "domain": "ROOT",
                }
                for k, v in self.tags
            ],
            "downloaddetails": [
                {
                    "datastore": f"nfs://secondary/{copy.zone.name}",
                    "downloadPercent": str(copy.percent),
                    "downloadState": copy.state,
                }
            ],
        }


@dataclass
class Job:
    cmd: str
    account_id: str
    instance_type: str | None = None
    instance_id: str | None = None
    status: int = 0  # 0 pending, 1 succeeded, 2 failed
    result_code: int = 0
    result: dict[str, Any] | None = None
    id: str = field(default_factory=new_id)
    created: str = field(default_factory=now_text)
    completed: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accountid": self.account_id,
            "userid": self.account_id,
            "cmd": self.cmd,
            "jobstatus": self.status,
            "jobprocstatus": 0,
            "jobresultcode": self.result_code,
            "jobinstancetype": self.instance_type,
            "jobinstanceid": self.instance_id,
            "created": self.created,
            "jobid": self.id,
        }
        if self.status != 0:
            out["jobresulttype"] = "object"
            out["jobresult"] = self.result
            out["completed"] = self.completed
        return {k: v for k, v in out.items() if v is not None}
