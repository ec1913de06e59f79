"""The in-toto Statement (v1) with a SLSA v1 provenance predicate of one published build.

subject: the published XVA. buildDefinition: the build type below, the parameters a user
chose (OS, platform, template, var file, source revision), the harness's own parameters, and
the resolved inputs: the git revision (with its dirty flag), the install media (ISO URLs and
checksums) or the local platform's base suite, Packer and its plugins, the inputs digest and
the harness. runDetails: the builder (the CI workflow at its ref, or this machine, with the
runner), the run (workflow run URL or the harness run id, start and end), and as byproducts
the checks' digest, the JUnit report, the build log and the SBOM.

The checks' digest is the SHA-256 of metadata.json's `validation.checks` as compact JSON with
sorted keys, so anyone can recompute it: `jq -jcS .validation.checks metadata.json | sha256sum`.

The statement is signed like SHA256SUMS (publish/signing.py): `provenance.intoto.json.sig`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.ci import builder_id, ci_context, invocation_id, repository_url
from publish.gating import Candidate

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://xcpng-templates.invalid/provenance/packer-template/v1"
MEDIA_TYPE = "application/vnd.in-toto+json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def checks_digest(checks: Mapping[str, Any]) -> str:
    """SHA-256 of the checks as metadata.json records them (compact, keys sorted)."""
    text = json.dumps(checks, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def statement(
    c: Candidate,
    *,
    build_id: str,
    artifact: tuple[str, str],
    also: Sequence[tuple[str, str]] = (),
    checks: Mapping[str, Any],
    byproducts: Mapping[str, str],
    publisher_version: str,
    media_types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The statement; `artifact` is (name, sha256) of the published XVA (the first subject),
    `also` the other disk images published from it (the VHD), `byproducts` name -> sha256 of
    the other published files it vouches for."""
    data, rec, build = c.results.data, c.record, c.build
    ci = data.get("builder") or ci_context()
    git = data["git"]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}} for name, digest in (artifact, *also)
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "os": c.os_name,
                    "platform": build.get("platform") or data["platform"],
                    "template": rec.get("template"),
                    "var_file": rec.get("var_file"),
                    "source": {
                        "repository": repository_url(ci),
                        "revision": git.get("revision"),
                        "dirty": git.get("dirty"),
                    },
                },
                "internalParameters": {
                    "build_id": build_id,
                    "harness_run_id": data["run_id"],
                    "harness_version": data["harness_version"],
                    "publisher_version": publisher_version,
                    "validated_platform": c.platform,
                },
                "resolvedDependencies": resolved_dependencies(c, ci),
            },
            "runDetails": {
                "builder": {
                    "id": builder_id(ci),
                    "version": {"xcpng-golden": data["harness_version"]},
                    **({"builderDependencies": [_runner(ci)]} if _runner(ci) else {}),
                },
                "metadata": {
                    "invocationId": invocation_id(ci, data["run_id"]),
                    "startedOn": data["started_at"],
                    "finishedOn": data["finished_at"],
                },
                "byproducts": [
                    {
                        "name": "checks",
                        "digest": {"sha256": checks_digest(checks)},
                        "annotations": {
                            "run_id": data["run_id"],
                            "passed": len(checks.get("passed", [])),
                            "failed": len(checks.get("failed", [])),
                            "skipped": len(checks.get("skipped", [])),
                            "recompute": "jq -jcS .validation.checks metadata.json | sha256sum",
                        },
                    },
                    *(
                        {
                            "name": name,
                            "digest": {"sha256": digest},
                            **(
                                {"mediaType": media_types[name]}
                                if media_types and name in media_types
                                else {}
                            ),
                        }
                        for name, digest in sorted(byproducts.items())
                    ),
                ],
            },
        },
    }


def resolved_dependencies(c: Candidate, ci: Mapping[str, Any]) -> list[dict[str, Any]]:
    data, build = c.results.data, c.build
    git = data["git"]
    deps: list[dict[str, Any]] = []
    if git.get("revision"):
        repo = repository_url(ci)
        deps.append(
            {
                "uri": f"git+{repo}@{git['revision']}" if repo else f"git:{git['revision']}",
                "digest": {"gitCommit": git["revision"]},
                "annotations": {"dirty": git.get("dirty")},
            }
        )
    inputs = c.record.get("inputs") or {}
    deps += _media(inputs)
    if build.get("packer_version"):
        deps.append({"name": "packer", "uri": f"pkg:generic/packer@{build['packer_version']}"})
    for name, version in sorted((build.get("plugins") or {}).items()):
        deps.append({"name": name, "uri": _plugin_uri(str(name), str(version))})
    digest = build.get("inputs_digest")
    if digest:
        algo, _, value = str(digest).rpartition(":")
        algo = algo or ("sha256" if _HEX64.match(value) else "inputs")
        deps.append(
            {
                "name": "inputs-digest",
                "digest": {algo: value},
                "annotations": {"covers": "Packer template, var file, scripts, installer files"},
            }
        )
    deps.append({"name": "xcpng-golden", "uri": f"pkg:pypi/xcpng-golden@{data['harness_version']}"})
    return deps


def _media(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The install media: ISO URLs with their checksum, or the local platform's base suite."""
    out: list[dict[str, Any]] = []
    checksum = str(inputs.get("iso_checksum") or "")
    algo, _, value = checksum.partition(":")
    for url in inputs.get("iso_urls") or ():
        entry: dict[str, Any] = {"uri": str(url)}
        if (
            value
            and algo in ("sha256", "sha512", "sha1", "md5")
            and re.fullmatch(r"[0-9a-f]+", value)
        ):
            entry["digest"] = {algo: value}
        elif checksum:
            entry["annotations"] = {"checksum": checksum}
        out.append(entry)
    if inputs.get("base_suite"):
        out.append(
            {
                "uri": f"{inputs.get('mirror') or 'http://deb.debian.org/debian'}"
                f"/dists/{inputs['base_suite']}",
                "annotations": {
                    "via": "mmdebstrap (the local platform's base disk)",
                    "kernel_package": inputs.get("kernel_package"),
                },
            }
        )
    return out


def _plugin_uri(name: str, version: str) -> str:
    """A Packer plugin's release page (github.com/org/x is github.com/org/packer-plugin-x)."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "github.com":
        return f"https://github.com/{parts[1]}/packer-plugin-{parts[2]}/releases/tag/{version}"
    return f"pkg:generic/{name}@{version}"


def _runner(ci: Mapping[str, Any]) -> dict[str, Any] | None:
    if ci.get("system") != "github-actions" or not ci.get("runner_name"):
        return None
    return {
        "name": "runner",
        "uri": f"urn:github-actions:runner:{ci['runner_name']}",
        "annotations": {
            "os": ci.get("runner_os"),
            "arch": ci.get("runner_arch"),
            "environment": ci.get("runner_environment"),
        },
    }


def encode(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
