"""What the HIS tests share beside their fixtures (conftest.py): free ports, waiting for a server, and a
small HTTP server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    url: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    seconds: float = 30.0,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# ---- a server that misbehaves ---------------------------------------------------------------------


class BadServer:
    """Answers by the first path segment: /http500, /garbage (not JSON), /html, /notfhir (JSON, not a
    resource), /outcome (200 with an OperationOutcome), /notfound (404 OperationOutcome), /slow (waits
    `slow_seconds`), /loop (a Bundle whose next page is itself), /foreign (next page on another host),
    /mixed (a Bundle with one valid and one invalid Patient). `paths` records what was asked."""

    def __init__(self) -> None:
        self.port = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.slow_seconds = 2.0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            path = request_line.split(" ")[1]
            self.paths.append(path)
            self.headers.append(
                {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)}
            )
            status, body, kind = await self._answer(path)
            payload = body.encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, path: str) -> tuple[int, str, str]:
        mode = path.split("/")[1]
        fhir = "application/fhir+json"
        issue = {"severity": "error", "code": "not-found", "diagnostics": "王小明 13900001234 not found"}
        outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
        if mode == "http500":
            return 500, "Internal Server Error", "text/plain"
        if mode == "garbage":
            return 200, '{"resourceType": "Bundle", "entry": [', fhir
        if mode == "html":
            return 200, "<html><body>Login</body></html>", "text/html"
        if mode == "notfhir":
            return 200, json.dumps([1, 2, 3]), "application/json"
        if mode == "outcome":
            return 200, json.dumps(outcome), fhir
        if mode == "notfound":
            return 404, json.dumps(outcome), fhir
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
            return 200, json.dumps({"resourceType": "Bundle", "type": "searchset"}), fhir
        if mode in ("loop", "foreign"):
            target = self.url if mode == "loop" else "http://127.0.0.2:9"
            bundle = {"resourceType": "Bundle", "type": "searchset",
                      "link": [{"relation": "next", "url": f"{target}/{mode}/Encounter?page=next"}],
                      "entry": [{"resource": {"resourceType": "Encounter", "id": f"e{len(self.paths)}",
                                              "status": "finished", "class": {"code": "AMB"}}}]}  # fmt: skip
            return 200, json.dumps(bundle), fhir
        if mode == "mixed":
            bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": {"resourceType": "Patient", "id": "good", "name": [{"text": "赵六"}]}},
                {"resource": {"resourceType": "Patient", "id": "bad", "gender": 42, "birthDate": "yesterday"}},
                {"resource": outcome, "search": {"mode": "outcome"}},
            ]}  # fmt: skip
            return 200, json.dumps(bundle), fhir
        return 404, "{}", "application/json"
