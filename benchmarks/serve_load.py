"""Bounded load test of ``affectlens serve`` on loopback: latency, errors, open files and memory.

    python benchmarks/serve_load.py --requests 300 --parallel 8 --json benchmarks/results/serve_load.json

Starts the server in its own process on a free loopback port, warms it up with one request of
every kind, then sends ``--requests`` requests, ``--parallel`` at a time, in a fixed shuffled
mix: good photos (one and five faces, RGBA), a short video, and bad uploads (text named .jpg,
a truncated JPEG, a pixel bomb, an empty file, an upload over the size limit, an unknown model).
Every request has the status it must get; the run fails (exit 1) on any 5xx, any other
unexpected status, or a connection error.

Reported: latency percentiles overall and per kind, status counts, throughput, and the server
process's open file descriptors and resident memory after the warm-up and after the run (a
leak shows as growth between the two). The machine is shared: the load average is recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_MEDIA = REPO.parent / "shared" / "media"

from affectlens.utils.markdown import markdown_table  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One kind of request: what is sent and the status it must get."""

    kind: str
    path: str
    name: str
    data: bytes
    expect: int
    weight: int
    query: str = ""


def png_bomb(side: int = 30_000) -> bytes:
    """A few hundred bytes whose header claims ``side x side`` pixels."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 256)) + \
        chunk(b"IEND", b"")


def build_cases(media: Path, max_upload_mb: float) -> list[Case]:
    jpeg = (media / "single_face.jpg").read_bytes()
    oversized = np.random.default_rng(0).integers(0, 256, int(max_upload_mb * 1e6) + 200_000, np.uint8).tobytes()
    return [
        Case("photo, 5 faces", "/v1/predict", "multi_face.jpg", (media / "multi_face.jpg").read_bytes(), 200, 6),
        Case("photo, 1 face", "/v1/predict", "single_face.jpg", jpeg, 200, 6),
        Case("photo, RGBA PNG", "/v1/predict", "alpha.png", (media / "Image_with_alpha.png").read_bytes(), 200, 3),
        Case("video, every 6th frame", "/v1/predict/video", "single_face.mp4", (media / "single_face.mp4").read_bytes(),
             200, 1, "every=6"),
        Case("bad: text named .jpg", "/v1/predict", "text.jpg", b"certainly not a photo\n" * 20, 415, 2),
        Case("bad: truncated JPEG", "/v1/predict", "cut.jpg", jpeg[: len(jpeg) // 3], 422, 2),
        Case("bad: pixel bomb PNG", "/v1/predict", "bomb.png", png_bomb(), 413, 2),
        Case("bad: empty file", "/v1/predict", "empty.jpg", b"", 422, 1),
        Case("bad: over the size limit", "/v1/predict", "huge.jpg", b"\xff\xd8\xff" + oversized, 413, 1),
        Case("bad: unknown model", "/v1/predict", "single_face.jpg", jpeg, 422, 1, "model=no-such-model"),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_usage(pid: int) -> dict[str, float]:
    """Open file descriptors and resident memory (MB) of a process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return {"open_files": len(os.listdir(f"/proc/{pid}/fd")), "rss_mb": round(rss, 1)}


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "affectlens.serve.command", "--port", str(port), "--model", args.model,
               "--max-upload-mb", str(args.max_upload_mb), "--concurrency", str(args.concurrency),
               "--timeout", str(args.timeout)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer /health within 120 s")


def send(client: httpx.Client, case: Case) -> tuple[str, int, float]:
    url = case.path + (f"?{case.query}" if case.query else "")
    started = time.perf_counter()
    try:
        status = client.post(url, files={"file": (case.name, case.data, "application/octet-stream")}).status_code
    except httpx.TransportError as exc:
        return case.kind, -1 if "huge" not in case.name else _closed_early(exc), time.perf_counter() - started
    return case.kind, status, time.perf_counter() - started


def _closed_early(exc: httpx.TransportError) -> int:
    """A server may answer 413 and close before the client finished sending a huge body."""
    return 413 if isinstance(exc, httpx.WriteError | httpx.RemoteProtocolError | httpx.ReadError) else -1


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 90, 99)} | {"max": round(float(ms.max()), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--model", default="default")
    parser.add_argument("--concurrency", type=int, default=2, help="The server's inference slots.")
    parser.add_argument("--max-upload-mb", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="The server's per-request time limit.")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.requests < 1 or args.parallel < 1:
        parser.error("--requests and --parallel must be >= 1")

    cases = build_cases(args.media, args.max_upload_mb)
    schedule = [case for case in cases for _ in range(case.weight)]
    rng = random.Random(args.seed)
    plan = [schedule[i % len(schedule)] for i in range(args.requests)]
    rng.shuffle(plan)

    port = free_port()
    load_before = os.getloadavg()
    server = start_server(args, port)
    try:
        limits = httpx.Limits(max_connections=args.parallel, max_keepalive_connections=args.parallel)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=args.timeout + 30, limits=limits) as client:
            with ThreadPoolExecutor(args.parallel) as pool:
                # Warm-up: every kind at full parallelism, so the server's worker threads, their
                # allocator arenas and lazy imports exist before the first measurement.
                warm_plan = cases * max(1, -(-4 * args.parallel // len(cases)))
                warm = list(pool.map(lambda case: send(client, case), warm_plan))
                bad_warm = [(kind, status) for (kind, status, _), case in zip(warm, warm_plan, strict=True)
                            if status != case.expect]
                usage = [process_usage(server.pid)]
                results: list[tuple[str, int, float]] = []
                started = time.perf_counter()
                quarter = -(-len(plan) // 4)
                for first in range(0, len(plan), quarter):  # usage after each quarter: a leak is a trend
                    results += pool.map(lambda case: send(client, case), plan[first:first + quarter])
                    usage.append(process_usage(server.pid))
                seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()

    expected = {case.kind: case.expect for case in cases}
    unexpected = [(kind, status) for kind, status, _ in results if status != expected[kind]] + bad_warm
    statuses = Counter(status for _, status, _ in results)
    by_kind: dict[str, list[float]] = {}
    for kind, _, latency in results:
        by_kind.setdefault(kind, []).append(latency)
    summary = {
        "requests": len(results), "parallel": args.parallel, "model": args.model, "server_concurrency":
        args.concurrency, "seconds": round(seconds, 2), "requests_per_s": round(len(results) / seconds, 2),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "unexpected": len(unexpected), "latency_ms": percentiles([r[2] for r in results]),
        "latency_ms_by_kind": {kind: percentiles(values) | {"n": len(values)} for kind, values in by_kind.items()},
        "server_usage_after_warmup_then_each_quarter": usage,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cpus": os.cpu_count(),
    }

    print(f"{summary['requests']} requests, {args.parallel} at a time, in {summary['seconds']} s "
          f"({summary['requests_per_s']} req/s); statuses {summary['status_counts']}; "
          f"5xx: {summary['server_errors_5xx']}; unexpected: {summary['unexpected']}")
    rows = [[kind, stats["n"], stats["p50"], stats["p90"], stats["p99"], stats["max"]]
            for kind, stats in summary["latency_ms_by_kind"].items()]
    overall = summary["latency_ms"]
    rows.append(["all", len(results), overall["p50"], overall["p90"], overall["p99"], overall["max"]])
    header = ["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print("\n".join(markdown_table(header, rows, right={1, 2, 3, 4, 5})))
    print("server open files after warm-up, then after each quarter: "
          + " -> ".join(str(u["open_files"]) for u in usage) + "; RSS MB: "
          + " -> ".join(str(u["rss_mb"]) for u in usage))
    print(f"load average {summary['load_average_before']} -> {summary['load_average_after']} on {summary['cpus']} CPUs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    for kind, status in unexpected[:10]:
        print(f"unexpected: {kind} -> {status}", file=sys.stderr)
    return 1 if unexpected or summary["server_errors_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
