"""Benchmark: the publisher's upload against a bare boto3 `upload_file`, same moto server, same run.

Both send the same file to one local moto server started for the run (a separate process, so
its memory is not counted); each upload runs in a child process of its own that reports its
wall time and peak RSS; kinds alternate and each object is deleted after its upload. The
publisher's figure is its whole artifact step (`publish.publisher.upload` over an
`ArtifactStream`): the sha256 and the source check computed in the upload's own read pass,
then the size and part-count check. The bare upload uses boto3's defaults (8 MiB parts,
10 threads, CRC32 request checksums) and verifies nothing. Each side runs with both checksum
settings, so each publisher line has a bare line that sends the same requests: `when_supported`
(a CRC32 per part: boto3's default, the publisher's on AWS) and `when_required` (each part's
payload SHA-256 signed: the publisher's `auto` default on any other endpoint, moto included).
Without a checksum algorithm moto, like AWS since 2025, computes a full-object CRC64NVME when the
upload completes, after copying the whole object once more: that server-side cost is the same
for both sides, and is what separates the two settings here.

The server keeps the parts it receives in memory (its temporary files on tmpfs), so the disk's
write-back does not slow some uploads and not others, and one untimed upload warms it up before
each size. Server and clients share every CPU; `--server-cpu own` gives the server a CPU of its
own, as an S3 endpoint on another host would have (on 2 cores that leaves moto one core, slower
for everyone, and the clients' CPU no longer counts).

`--endpoint URL --bucket NAME` measures against an S3 endpoint on another host instead (MinIO,
Ceph, AWS itself: `https://s3.<region>.amazonaws.com`), with the environment's AWS_* credentials
and `S3_REGION`; the objects go under `xcpng-bench-<id>/` and each is deleted after its
upload. That is where a difference of a few per cent between the two sides can be told from
moto's run-to-run spread.

    .venv/bin/python benchmarks/s3_upload.py                     # 1 GiB
    .venv/bin/python benchmarks/s3_upload.py --size 256M,1G,2G   # peak RSS against size
    .venv/bin/python benchmarks/s3_upload.py --raw disk.raw      # + a raw disk written as XVA
    .venv/bin/python benchmarks/s3_upload.py --endpoint https://minio.example:9000 --bucket b
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Literal

from core.ownership import scratch
from core.waiting import WaitTimeout, wait_for

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measure import MiB, report, run_child, warm  # noqa: E402

BUCKET = "bench-bucket"  # created on the local moto server
# moto assembles a multipart object in memory at CompleteMultipartUpload (about a minute per GiB
# here): both clients wait for it instead of timing out and retrying. Nothing else is changed:
# the bare client keeps boto3's default TransferConfig and checksum settings.
MOTO_READ_TIMEOUT = 1800
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",  # moto without auth: any key signs
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Target:
    """Where the uploads go. Credentials come from the environment (the AWS_* settings, or
    moto's stand-ins); every object is deleted after its upload."""

    endpoint: str
    bucket: str
    prefix: str = ""

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto spools every part above 5 MiB to a temporary file: `tmp` is where they go."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                return True
        except OSError:
            return False

    try:
        wait_for(answers, what="the moto server", timeout=30, interval=0.2)
    except WaitTimeout:
        proc.kill()
        raise SystemExit("moto server did not start within 30 s") from None
    return proc, endpoint


def split_cpus(mode: str, server_pid: int) -> str:
    """`own`: the server on the first CPU, this process and the clients it starts on the rest."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "shared" or len(cpus) < 2:
        return f"server and clients share {len(cpus)} CPU(s)"
    os.sched_setaffinity(server_pid, {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))
    return f"server on CPU {cpus[0]}, clients on {len(cpus) - 1} other CPU(s)"


def memory_dir() -> Path | None:
    """A tmpfs for the server's spooled parts, when the machine has one."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def make_file(path: Path, size: int) -> None:
    """Incompressible bytes, each MiB different (what an already compressed XVA looks like)."""
    block = os.urandom(MiB)
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            block = block[1:] + block[:1]
            left -= n


Checksums = Literal["when_supported", "when_required"]


def region() -> str:
    """The publisher's own setting (`S3_REGION`), so both sides sign for the same region."""
    from core.settings import Settings

    return Settings.from_env().s3.region


def client(endpoint: str, checksums: Checksums = "when_supported") -> Any:
    """boto3's defaults (`when_supported` is botocore's own default) but for moto's timeout;
    credentials from the environment."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region(),
        config=Config(
            s3={"addressing_style": "path"},
            read_timeout=MOTO_READ_TIMEOUT,
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
        ),
    )


def child(kind: str, target: Target, path: Path, key: str, sha256: str) -> dict[str, Any]:
    """Runs in its own process: one upload, its time (clients made, modules loaded before the
    clock starts, for both kinds) and what it sent."""
    if kind.startswith("bare"):
        checksums: Checksums = "when_required" if kind == "bare-required" else "when_supported"
        bare = client(target.endpoint, checksums)
        start = time.perf_counter()
        bare.upload_file(str(path), target.bucket, key)
        return {"seconds": time.perf_counter() - start, "sent": path.stat().st_size}
    from core.settings import Settings
    from publish.artifact import ArtifactPlan, ArtifactStream
    from publish.publisher import upload
    from publish.stores import s3

    s3.READ_TIMEOUT = MOTO_READ_TIMEOUT  # the publisher's own client, moto's timeout added
    env = {
        **os.environ,
        "S3_ENDPOINT_URL": target.endpoint,
        "S3_ADDRESSING_STYLE": "path",
        # named, not `auto`: the pairs must hold on an AWS endpoint too
        "S3_CHECKSUM_MODE": "when_supported" if kind == "ours-crc" else "when_required",
    }
    store = s3.S3Store(f"s3://{target.bucket}", Settings.from_env(env=env).s3)
    plan = ArtifactPlan(
        name=key,
        source=path,
        source_format="raw" if kind == "ours-raw" else "xva",
        source_size=path.stat().st_size,
        source_sha256=sha256,
        compression="zstd" if kind == "ours-raw" else "none",
        firmware=None,
        size_hint=path.stat().st_size,
        vm_name="bench",
    )
    stream = ArtifactStream(plan)
    start = time.perf_counter()
    digests = upload(
        store,
        key,
        stream.blocks(),
        lambda _m: None,
        size_hint=plan.size_hint,
        on_end=stream.check(),
    )
    return {"seconds": time.perf_counter() - start, "sent": digests.size}


def upload_once(
    target: Target, kind: str, path: Path, sha256: str, name: str, *, size: int
) -> dict[str, Any]:
    key = target.key(name)
    c = client(target.endpoint)
    try:
        result = run_child(
            Path(__file__), [kind, target.endpoint, target.bucket, str(path), key, sha256]
        )
        head = c.head_object(Bucket=target.bucket, Key=key)
        assert head["ContentLength"] == result["sent"], f"{kind}: wrong size stored"
    finally:  # also after a failed upload; moto keeps objects in memory: free it
        c.delete_object(Bucket=target.bucket, Key=key)
    result["throughput_mibps"] = size / MiB / result["seconds"]
    return result


def best_of(
    target: Target, pairs: list[tuple[str, Path, str]], size: int, repeat: int
) -> dict[str, dict[str, Any]]:
    """Alternate the kinds (order flipped every round) and keep each kind's fastest run: a
    shared machine only ever adds delays."""
    best: dict[str, dict[str, Any]] = {}
    upload_once(target, pairs[0][0], pairs[0][1], pairs[0][2], "warm-up.bin", size=size)
    for r in range(repeat):
        for kind, path, sha in pairs if r % 2 == 0 else pairs[::-1]:
            result = upload_once(target, kind, path, sha, f"{kind}-{r}.bin", size=size)
            runs = [*best.get(kind, {}).get("all_seconds", []), round(result["seconds"], 2)]
            if kind not in best or result["seconds"] < best[kind]["seconds"]:
                best[kind] = result
            best[kind]["all_seconds"] = runs
    return best


def main(argv: list[str] | None = None) -> int:
    from core.settings import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1G", help="file size(s), comma-separated [1G]")
    p.add_argument("--raw", type=Path, help="also publish this raw disk (written as zstd XVA)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each kind; best kept [2]")
    p.add_argument(
        "--server-cpu",
        choices=("own", "shared"),
        default="shared",
        help="the moto server sharing every CPU with the clients, or on one of its own [shared]",
    )
    p.add_argument(
        "--endpoint",
        help="an S3 endpoint URL to measure against instead of a local moto server "
        "(AWS_* credentials and S3_REGION from the environment; needs --bucket)",
    )
    p.add_argument("--bucket", help="an existing bucket at --endpoint (objects deleted after)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, endpoint, bucket, path, key, sha = args.child
        report(child(kind, Target(endpoint, bucket), Path(path), key, sha))
        return 0
    if bool(args.endpoint) != bool(args.bucket):
        p.error("--endpoint and --bucket go together: name a bucket that exists at the endpoint")
    sizes = [parse_size(s, "--size") for s in args.size.split(",")]
    with scratch("xcpng-bench-s3") as tmp:
        if args.endpoint:
            target = remote_target(args.endpoint, args.bucket)
            print(f"endpoint {target.endpoint}, bucket {target.bucket}, keys {target.prefix}*")
            out = measure(target, tmp, sizes, args.raw, args.repeat, cpus="server elsewhere")
        else:
            with moto_target(tmp, args.server_cpu) as (target, cpus):
                out = measure(target, tmp, sizes, args.raw, args.repeat, cpus=cpus)
    if args.json:
        print(json.dumps(out))
    return 0


def remote_target(endpoint: str, bucket: str) -> Target:
    """An S3 endpoint on another host: its bucket must answer before anything is uploaded."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client(endpoint).head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as e:
        raise SystemExit(
            f"--bucket {bucket} at {endpoint}: {e}. Create the bucket, or check the AWS_* "
            "credentials and S3_REGION"
        ) from None
    return Target(endpoint, bucket, prefix=f"xcpng-bench-{uuid.uuid4().hex[:12]}/")


@contextmanager
def moto_target(tmp: Path, server_cpu: str) -> Iterator[tuple[Target, str]]:
    """One local moto server for the run, its spooled parts in memory; moto's stand-in
    credentials for this process and the clients it starts."""
    os.environ.update(MOTO_ENV)
    with scratch("xcpng-bench-moto", memory_dir()) as spool:
        proc, endpoint = start_moto(tmp / "moto.log", spool)
        try:
            client(endpoint).create_bucket(Bucket=BUCKET)
            cpus = split_cpus(server_cpu, proc.pid)
            print(f"one moto server for the run: {endpoint}, parts spooled to {spool}")
            yield Target(endpoint, BUCKET), cpus
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def measure(
    target: Target, tmp: Path, sizes: list[int], raw: Path | None, repeat: int, *, cpus: str
) -> dict[str, Any]:
    from core.files import sha256_file

    out: dict[str, Any] = {"runs": [], "cpus": cpus}
    print(f"{cpus}; best of {repeat} per kind, after one warm-up upload")
    for size in sizes:
        path = tmp / "artifact.xva"
        make_file(path, size)
        warm(path)
        sha = sha256_file(path)
        kinds = [(k, path, sha) for k in ("bare", "ours-crc", "bare-required", "ours")]
        best = best_of(target, kinds, size, repeat)
        out["runs"].append(show(f"{size / MiB:.0f} MiB file", size, best))
        path.unlink()
    if raw:
        out["raw"] = raw_run(target, tmp, raw, repeat)
    return out


def raw_run(target: Target, tmp: Path, raw: Path, repeat: int) -> dict[str, Any]:
    """The publisher writing `raw` as a zstd XVA while it uploads, against upload_file of an XVA
    of the same disk written beforehand (the same bytes to send, give or take the UUIDs)."""
    from core.files import sha256_file
    from diskformats.xva.writer import raw_to_xva

    xva = tmp / "from-raw.xva"
    raw_to_xva(raw, xva, "bench", template=True, compression="zstd")
    warm(raw)
    best = best_of(
        target,
        [("bare", xva, sha256_file(xva)), ("ours-raw", raw, sha256_file(raw))],
        xva.stat().st_size,
        repeat,
    )
    result = show(f"{raw.name} written as XVA while uploading", xva.stat().st_size, best)
    xva.unlink()
    return result


LABELS = {
    "bare": "bare upload_file, CRC32",
    "ours-crc": "publisher, CRC32",
    "bare-required": "bare upload_file, signed",
    "ours": "publisher, signed",
    "ours-raw": "publisher from raw",
}
# each publisher kind against the bare kind that sends the same requests
SAME_REQUESTS = {"ours-crc": "bare", "ours": "bare-required", "ours-raw": "bare"}


def show(title: str, size: int, best: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One line per kind; each publisher kind's throughput over its bare counterpart's."""
    print(f"{title}: {size / MiB:.0f} MiB sent")
    out: dict[str, Any] = {"size": size}
    for kind, r in best.items():
        twin = SAME_REQUESTS.get(kind)
        ratio = r["throughput_mibps"] / best[twin]["throughput_mibps"] if twin else 1.0
        print(
            f"  {LABELS[kind]:>25}: {r['seconds']:7.2f} s {r['throughput_mibps']:7.1f} MiB/s  "
            f"x{ratio:.2f}  peak RSS {r['peak_rss_mib']:6.1f} MiB  (runs: {r['all_seconds']} s)"
        )
        out[kind] = {**r, "throughput_ratio": ratio} if twin else r
    ratios = {k: out[k]["throughput_ratio"] for k in SAME_REQUESTS if k in out}
    for kind, ratio in ratios.items():
        twin = SAME_REQUESTS[kind]
        medians = median(best[twin]["all_seconds"]) / median(best[kind]["all_seconds"])
        out[kind]["median_ratio"] = medians
        print(
            f"  throughput {LABELS[kind]} / {LABELS[twin]}: {ratio:.2f} "
            f"(best runs; {medians:.2f} between the median runs)"
        )
    out["throughput_ratio"] = min(ratios.values())
    return out


if __name__ == "__main__":
    sys.exit(main())
