"""cloud-init's system configuration as cloud-init itself merges it, read from an offline image.

`/etc/cloud/cloud.cfg` and `cloud.cfg.d/*.cfg` are not merged by replacing top-level keys:
cloud-init (`util.read_conf_with_confd`, `read_conf_d`, `mergemanydict`, `cloudinit/mergers`)
reads the drop-ins in reverse name order, merges them so that the first source keeps what it
set, recursing into mappings, and puts the result in front of cloud.cfg. So a later drop-in
that sets `system_info: {network: ...}` leaves cloud.cfg's `system_info.default_user` in
force, a later `users:` list does not replace an earlier one unless a `merge_how` says so, and
each file may carry its own `merge_how`/`merge_type`. This module reimplements those rules
(dict: replace / no_replace, recurse_array, recurse_str, allow_delete; list: append, prepend,
replace, no_replace, recurse_*; str: append), so a check reads what a real clone gets.
Pure: it reads files through the callables it is given, and is unit-tested without an image.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import yaml

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"
DEFAULT_MERGE = "list()+dict()+str()"  # cloudinit/mergers DEF_MERGE_TYPE
_NAME = re.compile(r"(^[a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$")

Mergers = list[tuple[str, list[str]]]


def parse_merge_how(spec: Any) -> Mergers:
    """`merge_how` as a string ("dict(replace)+list(append)") or a list of name/settings."""
    out: Mergers = []
    if isinstance(spec, str):
        for part in spec.split("+"):
            name = part.lower().strip().replace("-", "_")
            if not name:
                continue
            m = _NAME.match(name)
            if not m:
                raise ValueError(f"merger {part!r} is not in the form name(options)")
            opts = [o.strip().lower() for o in m.group(2).split(",") if o.strip()]
            out.append((m.group(1), opts))
        return out
    for item in spec or []:
        if isinstance(item, dict):
            out.append(
                (str(item["name"]).replace("-", "_").strip(), list(item.get("settings", [])))
            )
        elif item:
            out.append((str(item[0]), list(item[1:])))
    return out


class _Merger:
    """cloud-init's LookupMerger over its dict, list and str mergers."""

    def __init__(self, mergers: Mergers) -> None:
        self.opts: dict[str, list[str]] = {}
        for name, opts in mergers:
            self.opts.setdefault(name.removeprefix("m_"), opts)

    def _has(self, kind: str, *names: str) -> bool:
        return any(n in self.opts.get(kind, []) for n in names)

    def _method(self, kind: str, methods: tuple[str, ...], default: str) -> str:
        return next((m for m in methods if m in self.opts.get(kind, [])), default)

    def _recurses(self, kind: str, new: Any, always_dict: bool = False) -> bool:
        """Whether a merger of `kind` merges into the old value rather than keep or replace it
        (dict mergers always recurse into mappings: recurse_dict is forced on)."""
        if isinstance(new, (list, tuple)):
            return self._has(kind, "recurse_array", "recurse_list")
        if isinstance(new, str):
            return self._has(kind, "recurse_str")
        if isinstance(new, dict):
            return always_dict or self._has(kind, "recurse_dict")
        return False

    def merge(self, value: Any, merge_with: Any) -> Any:
        if isinstance(value, dict) and "dict" in self.opts:
            return self._on_dict(value, merge_with)
        if isinstance(value, (list, tuple)) and "list" in self.opts:
            merged = self._on_list(list(value), merge_with)
            return tuple(merged) if isinstance(value, tuple) else merged
        if isinstance(value, str) and "str" in self.opts:
            return value + merge_with if self._has("str", "append") else merge_with
        return value  # no merger for this type: the value stays

    def _on_dict(self, value: dict[str, Any], merge_with: Any) -> dict[str, Any]:
        if not isinstance(merge_with, dict):
            return value
        replace = self._method("dict", ("replace", "no_replace"), "no_replace") == "replace"
        out = dict(value)
        for key, new in merge_with.items():
            if key not in out:
                out[key] = new
            elif new is None and self._has("dict", "allow_delete"):
                out.pop(key)
            elif replace:
                out[key] = new
            elif self._recurses("dict", new, always_dict=True):
                out[key] = self.merge(out[key], new)
        return out

    def _on_list(self, value: list[Any], merge_with: Any) -> Any:
        method = self._method("list", ("append", "prepend", "replace", "no_replace"), "replace")
        if not isinstance(merge_with, (list, tuple)):
            return merge_with if method == "replace" else value
        if method == "prepend":
            return [*merge_with, *value]
        if method == "append":
            return [*value, *merge_with]
        out = list(value)
        for i in range(min(len(out), len(merge_with))):
            if method != "no_replace":
                new = merge_with[i]
                out[i] = self.merge(out[i], new) if self._recurses("list", new) else new
        return out


def merge_many(sources: list[dict[str, Any]]) -> dict[str, Any]:
    """cloud-init's `util.mergemanydict`: the first source wins unless a source's own
    `merge_how` (or `merge_type`) says otherwise; that key is consumed, as cloud-init does."""
    merged: dict[str, Any] = {}
    for raw in sources:
        if not raw:
            continue
        cfg = copy.deepcopy(raw)
        how = cfg.pop("merge_how", None)
        if how is None:
            how = cfg.pop("merge_type", None)
        mergers = parse_merge_how(how) if how is not None else []
        merged = _Merger(mergers or parse_merge_how(DEFAULT_MERGE)).merge(merged, cfg)
    return merged


def _load(read: Callable[[str], str], path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(read(path)) or {}
    except yaml.YAMLError as exc:
        raise AssertionError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise AssertionError(f"{path} is not a mapping")
    return data


def merged(read: Callable[[str], str], listdir: Callable[[str], list[str]]) -> dict[str, Any]:
    """The system configuration a clone's cloud-init starts from (before user-data), merged as
    `read_conf_with_confd(/etc/cloud/cloud.cfg)` does; a file that is not YAML raises."""
    base = _load(read, CLOUD_CFG)
    confd = base.get("conf_d") or CLOUD_CFG_D
    if not isinstance(confd, str):
        raise AssertionError(f"{CLOUD_CFG}: conf_d is not a string: {confd!r}")
    try:
        names = listdir(confd.strip())
    except (FileNotFoundError, NotADirectoryError):
        names = []
    drop_ins = [_load(read, f"{confd.rstrip('/')}/{n}") for n in sorted(names, reverse=True)
                if n.endswith(".cfg")]  # fmt: skip
    return merge_many([merge_many(drop_ins), base])


def sources(listdir: Callable[[str], list[str]]) -> list[str]:
    """The files merged, in the order cloud-init reads them, for messages."""
    try:
        names = sorted(n for n in listdir(CLOUD_CFG_D) if n.endswith(".cfg"))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    return [CLOUD_CFG] + [f"{CLOUD_CFG_D}/{n}" for n in names]
