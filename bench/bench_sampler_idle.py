"""What idle requests in flight cost a server with slow-request profiles on.

    python -m bench.bench_sampler_idle [--connections 500] [--seconds 10]

Starts uvicorn on 127.0.0.1 serving a FastAPI upload endpoint under obs, twice (slow profiles
off, then on), opens *connections* uploads that send one byte of a 100,000-byte body and then
stay idle, and prints the server's CPU over *seconds* as a share of one core. The sampler
thread must not turn idle connections into work: it walks at most
``obs.profiling.slow.sampler.MAX_SAMPLED_PER_TICK`` requests a tick.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """
import obs
from fastapi import FastAPI, Request
from obs.asgi import ObservabilityMiddleware

obs.configure_logging(service_name="bench-idle")
api = FastAPI()


@api.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"n": len(await request.body())}


app = ObservabilityMiddleware(api)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(slow_profiles: bool, connections: int, seconds: float, workdir: Path) -> float:
    """The server's CPU share of one core, in percent, while *connections* uploads idle."""
    port = _free_port()
    env = {
        **os.environ,
        "OBS_LOG_FORMAT": "json",
        "OBS_SLOW_PROFILES": "1" if slow_profiles else "0",
        "OBS_PROFILE_DIR": str(workdir / "profiles"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "idle_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--timeout-keep-alive", "600"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("Error: uvicorn did not start; is it installed?") from None
                time.sleep(0.2)
        head = (
            b"POST /upload HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\nx"
        )
        for _ in range(connections):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(head)
            sockets.append(client)
        time.sleep(2)  # every request is in flight, waiting for its body
        cpu, start = _cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        return 100 * (_cpu_seconds(server.pid) - cpu) / (time.monotonic() - start)
    finally:
        for client in sockets:
            client.close()
        server.terminate()
        server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        workdir = Path(tmp)
        (workdir / "idle_app.py").write_text(APP)
        for on in (False, True):
            share = measure(on, args.connections, args.seconds, workdir)
            print(
                f"OBS_SLOW_PROFILES={int(on)}: {args.connections} idle uploads in flight, "
                f"server CPU {share:.1f} % of one core over {args.seconds:g} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
