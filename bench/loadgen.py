"""A small HTTP/1.1 keep-alive load generator, used when ``wrk`` is not installed.

``python -m bench.loadgen HOST PORT PATH SECONDS CONNECTIONS`` prints one JSON object:
requests per second and latency percentiles in milliseconds. Bounded by *SECONDS*; it only
ever connects to the address it is given (the benchmarks give it 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            close = False
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _run(
    host: str, port: int, path: str, seconds: float, connections: int
) -> dict[str, float]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench\r\n\r\n".encode()
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(int(len(latencies) * p), len(latencies) - 1)] * 1000, 3)

    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main() -> None:
    host, port, path, seconds, connections = sys.argv[1:6]
    result = asyncio.run(_run(host, int(port), path, float(seconds), int(connections)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
