"""A cheap HTTP/1.1 load generator that runs in its own process (asyncio streams, uvloop when present).

The benchmark builds every request up front (method, path, headers, body); this process opens
``connections`` keep-alive connections, waits until all are open, then sends the requests in order,
each connection taking the next one as soon as its previous answer is in (a closed loop, no think
time unless ``pause_ms`` is given). It measures each request's latency from the first byte written to
the last byte read, and reports the status codes. Requests are pre-encoded bytes and answers are only
framed (status line, Content-Length or chunks), so a request costs the generator a few dozen
microseconds: the server, not the client, sets the pace on a 2-core machine.

Use :func:`run_load` from a benchmark; it starts ``python loadgen.py SPEC OUT`` and reads the result.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, path: str, payload: object, headers: dict[str, str] | None = None) -> Request:
        body = json.dumps(payload).encode()
        return cls("POST", path, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass
class LoadResult:
    label: str
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[str]
    #: Connection-level failures (refused, reset, time-out): each also counts as a status "error".
    transport_errors: int

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def errors(self, expected: set[int]) -> int:
        return sum(
            n for status, n in self.statuses.items() if not status.isdigit() or int(status) not in expected
        )

    def line(self) -> str:
        return (
            f"{self.label:<34} {self.count:>6} req {self.seconds:>6.2f} s {self.throughput:>8.0f} req/s  "
            f"p50 {self.p50:>7.1f}  p90 {self.percentile(0.9):>7.1f}  p99 {self.p99:>7.1f}  "
            f"max {max(self.latencies_ms, default=0):>7.1f} ms  {dict(sorted(self.statuses.items()))}"
        )


def run_load(
    base_url: str,
    requests: list[Request],
    connections: int,
    label: str,
    pause_ms: float = 0.0,
    timeout: float = 170.0,
) -> LoadResult:
    """Send ``requests`` over ``connections`` connections from a separate process; blocks until done."""
    host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
    spec = {
        "host": host,
        "port": int(port or 80),
        "connections": connections,
        "pause_ms": pause_ms,
        "requests": [
            {"method": r.method, "path": r.path, "body": r.body.decode(), "headers": r.headers}
            for r in requests
        ],
    }
    with tempfile.TemporaryDirectory(prefix="loadgen-") as folder:
        spec_path, out_path = Path(folder) / "spec.json", Path(folder) / "out.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), str(spec_path), str(out_path)],
            check=True,
            timeout=timeout,
        )
        out = json.loads(out_path.read_text())
    return LoadResult(
        label, out["seconds"], out["latencies_ms"], Counter(out["statuses"]), out["transport_errors"]
    )


# --- the generator process --------------------------------------------------------------------------


def _encode(host: str, port: int, request: dict[str, Any]) -> bytes:
    body = str(request["body"]).encode()
    lines = [f"{request['method']} {request['path']} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in request["headers"].items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    for raw in header_block.split(b"\r\n"):
        name, _, value = raw.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    payloads = [_encode(host, port, request) for request in spec["requests"]]
    latencies: list[float] = [0.0] * len(payloads)
    statuses: Counter[str] = Counter()
    transport_errors = 0
    next_index = 0
    pause = spec.get("pause_ms", 0.0) / 1000

    streams = [await asyncio.open_connection(host, port) for _ in range(spec["connections"])]

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index, transport_errors
        while next_index < len(payloads):
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                writer.write(payloads[index])
                status = str(await _read_response(reader))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                transport_errors += 1
                status = "error"
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            latencies[index] = (time.perf_counter() - started) * 1000
            statuses[status] += 1
            if pause:
                await asyncio.sleep(pause)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(reader, writer) for reader, writer in streams))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "latencies_ms": latencies,
        "statuses": dict(statuses),
        "transport_errors": transport_errors,
    }


def main() -> None:
    spec_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_generate(spec))
    else:
        result = uvloop.run(_generate(spec))
    out_path.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
