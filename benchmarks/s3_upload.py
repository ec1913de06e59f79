"""Benchmark: the publisher's S3 upload against bare `boto3` `upload_file` with defaults.

Both upload the same file to the same local moto server (a separate process, so its memory
is not counted); each upload runs in its own child process that reports its wall time and
peak RSS (resource.getrusage). The publisher's figure includes what it does beyond the bare
upload: the sha256/MD5 pass over the file and the post-upload verification.

    .venv/bin/python benchmarks/s3_upload.py            # 2 GiB
    .venv/bin/python benchmarks/s3_upload.py --size 64M # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from core.leftovers import scratch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUCKET = "bench-bucket"
# moto assembles a multipart object in memory at CompleteMultipartUpload (about a minute per GiB
# here): both clients wait for it instead of timing out and retrying. Nothing else is changed:
# the bare client keeps boto3's default TransferConfig and checksum settings.
MOTO_READ_TIMEOUT = 1800
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",  # moto without auth: any key signs
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto server did not start within 30 s")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            block = block[1:] + block[:1]  # cheap change per MiB: parts differ
            left -= n


def child(kind: str, endpoint: str, path: Path, key: str) -> dict[str, Any]:
    """Runs in its own process: one upload, its time and peak memory."""
    import boto3
    from botocore.config import Config

    start = time.perf_counter()
    if kind == "bare":
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, read_timeout=MOTO_READ_TIMEOUT),
        )
        client.upload_file(str(path), BUCKET, key)
        phases = {"upload_s": time.perf_counter() - start}
    else:
        from core.settings import Settings
        from publish.digests import digest_file
        from publish.stores.s3 import S3Store

        env = {**ENV, "S3_ENDPOINT_URL": endpoint, "S3_ADDRESSING_STYLE": "path"}
        store = S3Store(f"s3://{BUCKET}", Settings.from_env(env=env).s3)
        config = store.client.meta.config.merge(Config(read_timeout=MOTO_READ_TIMEOUT))
        store.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )
        ready = time.perf_counter()
        digests = digest_file(
            path, store.threshold, store.chunksize, store.wants_md5, store.wants_crc
        )
        hashed = time.perf_counter()
        store.put_file(key, path, digests, lambda _m: None)
        phases = {
            "setup_s": ready - start,
            "hash_s": hashed - ready,
            "upload_and_verify_s": time.perf_counter() - hashed,
        }
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "kind": kind,
        "seconds": time.perf_counter() - start,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        **phases,
    }


def run_child(kind: str, endpoint: str, path: Path, key: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--endpoint",
            endpoint,
            "--file",
            str(path),
            "--key",
            key,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} upload failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_all(tmp: Path, size: int, repeat: int) -> tuple[dict[str, dict[str, Any]], str]:
    """Upload the same file both ways, alternating, each time to a fresh moto server (moto keeps
    what it stored in memory, so a later upload to the same server would start at a
    disadvantage); keep each kind's fastest run, since a shared machine only adds delays."""
    path = tmp / "artifact.bin"
    make_file(path, size)
    results: dict[str, dict[str, Any]] = {}
    endpoint = ""
    for _ in range(repeat):
        for kind in ("bare", "ours"):
            result, endpoint = upload_once(tmp, kind, path, size)
            if kind not in results or result["seconds"] < results[kind]["seconds"]:
                results[kind] = result
    return results, endpoint


def upload_once(tmp: Path, kind: str, path: Path, size: int) -> tuple[dict[str, Any], str]:
    import boto3

    log = tmp / f"moto-{kind}.log"
    proc, endpoint = start_moto(log)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=BUCKET)
        try:
            result = run_child(kind, endpoint, path, f"{kind}.bin")
        except SystemExit:
            tail = log.read_text(errors="replace")[-3000:]
            print(f"moto server log (tail):\n{tail}", file=sys.stderr)
            raise
        head = client.head_object(Bucket=BUCKET, Key=f"{kind}.bin")
        assert head["ContentLength"] == size, f"{kind}: wrong size stored"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return result, endpoint


def main(argv: list[str] | None = None) -> int:
    from core.settings import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="2G", help="file size, e.g. 2G, 64M [2G]")
    p.add_argument("--child", choices=("bare", "ours"), help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=1, help="runs of each, alternating; best kept [1]")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.endpoint, args.file, args.key)))
        return 0
    size = parse_size(args.size, "--size")
    with scratch("xcpng-bench-s3") as tmp:
        results, endpoint = run_all(Path(tmp), size, max(1, args.repeat))
    mib = size / (1 << 20)
    bare, ours = results["bare"], results["ours"]
    print(f"file: {mib:.0f} MiB, each upload to a fresh moto server ({endpoint.rsplit(':', 1)[0]})")
    for r in (bare, ours):
        extra = ""
        if r["kind"] == "ours":
            extra = (
                f" (client {r['setup_s']:.1f} s, hash {r['hash_s']:.1f} s, "
                f"upload+verify {r['upload_and_verify_s']:.1f} s)"
            )
        print(
            f"{'bare upload_file' if r['kind'] == 'bare' else 'publisher':>17}: "
            f"{r['seconds']:7.2f} s  {mib / r['seconds']:8.1f} MiB/s  "
            f"peak RSS {r['peak_rss_mib']:7.1f} MiB{extra}"
        )
    ratio = bare["seconds"] / ours["seconds"]
    print(f"throughput ratio publisher/bare: {ratio:.2f}")
    print(f"peak memory ratio publisher/bare: {ours['peak_rss_mib'] / bare['peak_rss_mib']:.2f}")
    if args.json:
        print(json.dumps({"size": size, "bare": bare, "ours": ours, "throughput_ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
