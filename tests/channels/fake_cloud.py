"""A stand-in for the cloud SMS API on a real socket (Starlette under uvicorn in a thread): it checks
the request signature with its own implementation of the provider's algorithm, records what it got
and answers with a scripted code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from smsc import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCESS_KEY_ID = "LTAI-test-key"
ACCESS_KEY_SECRET = "test-secret-of-the-access-key"


def expected_signature(form: dict[str, str], secret: str) -> str:
    def enc(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    pairs = sorted((k, v) for k, v in form.items() if k != "Signature")
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)
    message = "POST&" + enc("/") + "&" + enc(canonical)
    mac = hmac.new((secret + "&").encode("utf-8"), message.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass
class CloudApi:
    """`answers`: (HTTP status, JSON body) to give, in order; then OK with a BizId."""

    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def send_sms(self, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(form)
        if form.get("AccessKeyId") != ACCESS_KEY_ID:
            return JSONResponse({"Code": "InvalidAccessKeyId.NotFound", "Message": "no such key"}, status_code=404)
        if not hmac.compare_digest(form.get("Signature", ""), expected_signature(form, ACCESS_KEY_SECRET)):
            return JSONResponse({"Code": "SignatureDoesNotMatch", "Message": "bad signature"}, status_code=400)
        if self.answers:
            status, body = self.answers.pop(0)
            return JSONResponse(body, status_code=status)
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": f"BIZ{len(self.requests)}", "RequestId": "r"})


class RunningCloudApi:
    """`with RunningCloudApi() as api:` the fake API on a free port (`api.url`), stopped at the end."""

    def __init__(self) -> None:
        self.api = CloudApi()
        self.port = free_port()
        app = Starlette(routes=[Route("/", self.api.send_sms, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> CloudApi:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the fake cloud API did not start"
            time.sleep(0.02)
        self.api.url = f"http://127.0.0.1:{self.port}/"
        return self.api

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
