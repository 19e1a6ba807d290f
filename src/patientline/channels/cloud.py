"""A cloud SMS API in the style of Alibaba Cloud SMS (dysmsapi `SendSms`): the provider holds the
approved template and the signature; we send the template code, the sign name and the variables as
JSON, in a form POST signed with HMAC-SHA1 of the access key secret (signature version 1.0).

The answer is `{"Code": "OK", "BizId": ...}` or an error code. Delivery reports and patients'
replies are pushed by the provider to our callbacks (see `parse_reports`, `parse_replies`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from patientline.channels.gateways import OutboundSms, PermanentFailure, Receipt, Reply, SendResult, TemporaryFailure
from patientline.channels.policy import mobile_number, sms_parts
from patientline.core import clock
from patientline.core.config import Settings
from patientline.core.errors import InvalidInput

API_VERSION = "2017-05-25"
# codes where the same request can never succeed: the number, template, signature or parameters
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.DENY_IP_RANGE",
    }
)


def percent(value: str) -> str:
    """RFC 3986 percent-encoding, as the signature requires (space as %20, '~' kept)."""
    return quote(value, safe="~")


def sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class CloudConfig:
    endpoint: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    region: str
    timeout: float


class CloudSmsGateway:
    name = "http"
    simulates_receipts = False

    def __init__(self, config: CloudConfig) -> None:
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudSmsGateway:
        return cls(
            CloudConfig(
                endpoint=settings.sms_http_endpoint,
                access_key_id=settings.sms_http_access_key_id,
                access_key_secret=settings.sms_http_access_key_secret.get_secret_value(),
                sign_name=settings.sms_sign_name,
                region=settings.sms_http_region,
                timeout=settings.sms_http_timeout_seconds,
            )
        )

    def request_params(self, message: OutboundSms) -> dict[str, str]:
        params = {
            "AccessKeyId": self.config.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": str(message.message_id),
            "PhoneNumbers": _provider_number(message.phone),
            "RegionId": self.config.region,
            "SignName": self.config.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": message.provider_template_code,
            "TemplateParam": json.dumps(message.variables, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = sign(params, self.config.access_key_secret)
        return params

    async def send(self, message: OutboundSms) -> SendResult:
        if not (self.config.access_key_id and self.config.access_key_secret and self.config.sign_name):
            raise TemporaryFailure("the cloud SMS adapter needs an access key, its secret and a sign name")
        if not message.provider_template_code:
            raise PermanentFailure(f"template {message.template_code} has no provider template code", code="template")
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout) as http:
                response = await http.post(self.config.endpoint, data=self.request_params(message))
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"SMS API not reachable: {type(exc).__name__}") from exc
        return self._result(response, message)

    def _result(self, response: httpx.Response, message: OutboundSms) -> SendResult:
        if response.status_code >= 500:
            raise TemporaryFailure(f"SMS API answered HTTP {response.status_code}")
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"SMS API answered HTTP {response.status_code} without JSON") from exc
        code = str(body.get("Code", ""))
        if code == "OK" and body.get("BizId"):
            return SendResult(provider=self.name, refs=[str(body["BizId"])], parts=sms_parts(message.text))
        detail = f"{code}: {str(body.get('Message', ''))[:200]}"
        if code in PERMANENT_CODES:
            raise PermanentFailure(detail, code=code)
        raise TemporaryFailure(detail)


def _provider_number(e164: str) -> str:
    """Mainland numbers without the country code, others with it (no '+')."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def _phone(raw: object) -> str | None:
    try:
        return mobile_number(str(raw or ""))
    except InvalidInput:
        return None


def parse_reports(items: list[dict[str, Any]]) -> list[Receipt]:
    """The provider's delivery reports: `biz_id`, `success`, `err_code`, `err_msg` per message."""
    receipts = []
    for item in items:
        ref = str(item.get("biz_id") or "")
        if not ref:
            continue
        delivered = item.get("success") in (True, "true", "True")
        error = None if delivered else f"{item.get('err_code', '')} {item.get('err_msg', '')}".strip()
        receipts.append(Receipt(provider="http", ref=ref, delivered=delivered, error=error))
    return receipts


def parse_replies(items: list[dict[str, Any]]) -> list[Reply]:
    """Patients' replies (`phone_number`, `content`)."""
    replies = []
    for item in items:
        phone = _phone(item.get("phone_number"))
        if phone is not None:
            replies.append(Reply(phone=phone, text=str(item.get("content") or "")))
    return replies
