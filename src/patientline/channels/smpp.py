"""SMPP 3.4 adapter (smpplib, which blocks: it runs in a thread).

One connection per delivery: bind_transceiver, one submit_sm per part (UCS-2 with a concatenation
header for Chinese text; each answered before the next is sent), then a short linger to read
delivery receipts and replies the SMSC pushes, then unbind. Receipts and replies that arrive while
nothing is being sent wait at the SMSC until the inbox sweeper binds (once a minute). Every read is
bounded by the socket timeout, the whole exchange by a deadline.

Limits: a message that fails after some of its parts were accepted is sent whole again on retry;
there is no window of outstanding submits (one in flight), which suits a hospital's volume."""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import smpplib.client  # type: ignore[import-untyped]
import smpplib.consts  # type: ignore[import-untyped]
import smpplib.exceptions  # type: ignore[import-untyped]
import smpplib.gsm  # type: ignore[import-untyped]
import smpplib.smpp  # type: ignore[import-untyped]

from patientline.channels.gateways import (
    OutboundSms,
    PermanentFailure,
    Receipt,
    Reply,
    SendResult,
    TemporaryFailure,
)
from patientline.channels.policy import mobile_number
from patientline.core.config import Settings
from patientline.core.errors import InvalidInput

T = TypeVar("T")
RECEIPT_ESM = 0x04  # esm_class message type: SMSC delivery receipt
UDHI = 0x40
DELIVERED_STATE = 2
FINAL_FAILURES = frozenset({"EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"})
FAILED_STATES = frozenset({3, 4, 5, 7, 8})
# submit_sm_resp statuses that no retry can fix: the number, the source or the text is wrong
PERMANENT_STATUSES = frozenset({0x01, 0x0A, 0x0B, 0x33, 0x48, 0x49, 0x50, 0x51, 0x65})
RECEIPT_FIELDS = re.compile(r"(id|stat|err):(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    source_addr: str
    timeout: float
    linger: float


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


class _Link:
    """One bound SMPP session."""

    def __init__(self, config: SmppConfig) -> None:
        self.config = config
        self.client = smpplib.client.Client(
            config.host, config.port, timeout=config.timeout, allow_unknown_opt_params=True
        )
        self.inbound: list[Receipt | Reply] = []

    def __enter__(self) -> _Link:
        try:
            self.client.connect()
            self.client.bind_transceiver(
                system_id=self.config.system_id, password=self.config.password, system_type=self.config.system_type
            )
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            self.close()
            raise TemporaryFailure(f"SMSC bind failed: {exc}") from exc
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX:
            with contextlib.suppress(smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
                self.client.unbind()  # the connection goes anyway
        self.client.disconnect()

    def submit(self, destination: str, part: bytes, coding: int, esm_class: int) -> str:
        source_ton, source_npi = _source_numbering(self.config.source_addr)
        try:
            pdu = self.client.send_message(
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                source_addr=self.config.source_addr,
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                destination_addr=destination,
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
                registered_delivery=smpplib.consts.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
            )
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            raise TemporaryFailure(f"SMSC connection lost: {exc}") from exc
        response = self._response_to(pdu.sequence)
        status = int(response.status or 0)
        if status in PERMANENT_STATUSES:
            raise PermanentFailure(f"SMSC refused the message: status 0x{status:02X}", code=f"0x{status:02X}")
        if status:
            raise TemporaryFailure(f"SMSC refused the message for now: status 0x{status:02X}")
        return _text(response.message_id)

    def _response_to(self, sequence: int) -> Any:
        while True:
            pdu = self._read()
            if pdu.command == "submit_sm_resp" and pdu.sequence == sequence:
                return pdu
            self._handle(pdu)

    def _read(self) -> Any:
        try:
            return self.client.read_pdu()
        except TimeoutError as exc:
            raise TemporaryFailure("the SMSC did not answer in time") from exc
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            raise TemporaryFailure(f"SMSC connection lost: {exc}") from exc

    def _handle(self, pdu: Any) -> None:
        if pdu.command == "deliver_sm":
            item = parse_inbound(pdu)
            if item is not None:
                self.inbound.append(item)
            self._answer(pdu, "deliver_sm_resp")
        elif pdu.command == "enquire_link":
            self._answer(pdu, "enquire_link_resp")

    def _answer(self, pdu: Any, command: str) -> None:
        response = smpplib.smpp.make_pdu(command, client=self.client)
        response.sequence = pdu.sequence
        self.client.send_pdu(response)

    def linger(self, seconds: float) -> None:
        """Reads (and answers) what the SMSC pushes until `seconds` have passed."""
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.client._socket], [], [], remaining)  # smpplib offers no wait
            if not ready:
                return
            self._handle(self._read())


def _source_numbering(source: str) -> tuple[int, int]:
    if source.isdigit() or not source:
        return smpplib.consts.SMPP_TON_UNK, smpplib.consts.SMPP_NPI_ISDN
    return smpplib.consts.SMPP_TON_ALNUM, smpplib.consts.SMPP_NPI_UNK


def parse_inbound(pdu: Any) -> Receipt | Reply | None:
    """A deliver_sm: a final delivery receipt, a patient's reply, or None (interim states, unknown
    senders)."""
    esm = int(pdu.esm_class or 0)
    raw = pdu.short_message or b""
    if esm & RECEIPT_ESM:
        return _receipt(pdu, _text(raw))
    if esm & UDHI and raw:
        raw = raw[raw[0] + 1 :]
    text = raw.decode("utf-16-be", "replace") if pdu.data_coding == 8 else raw.decode("latin-1")
    digits = _text(pdu.source_addr)
    try:
        phone = mobile_number(f"+{digits}" if pdu.source_addr_ton == smpplib.consts.SMPP_TON_INTL else digits)
    except InvalidInput:
        return None
    return Reply(phone=phone, text=text)


def _receipt(pdu: Any, text: str) -> Receipt | None:
    fields = {key.lower(): value for key, value in RECEIPT_FIELDS.findall(text)}
    ref = _text(pdu.receipted_message_id) or fields.get("id", "")
    stat = fields.get("stat", "").upper()
    state = pdu.message_state
    if not ref:
        return None
    if stat == "DELIVRD" or state == DELIVERED_STATE:
        return Receipt(provider="smpp", ref=ref, delivered=True)
    if stat in FINAL_FAILURES or state in FAILED_STATES:
        return Receipt(provider="smpp", ref=ref, delivered=False, error=f"{stat or state} err:{fields.get('err', '')}")
    return None


class SmppGateway:
    name = "smpp"
    simulates_receipts = False

    def __init__(self, config: SmppConfig) -> None:
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> SmppGateway:
        return cls(
            SmppConfig(
                host=settings.sms_smpp_host,
                port=settings.sms_smpp_port,
                system_id=settings.sms_smpp_system_id,
                password=settings.sms_smpp_password.get_secret_value(),
                system_type=settings.sms_smpp_system_type,
                source_addr=settings.sms_smpp_source_addr,
                timeout=settings.sms_smpp_timeout_seconds,
                linger=settings.sms_smpp_linger_seconds,
            )
        )

    async def send(self, message: OutboundSms) -> SendResult:
        parts, coding, esm_class = smpplib.gsm.make_parts(message.text)
        deadline = self.config.timeout * (len(parts) + 3) + self.config.linger
        return await self._bounded(self._send, deadline, message.phone.lstrip("+"), parts, coding, esm_class)

    async def collect(self) -> list[Receipt | Reply]:
        """Binds only to read what waits at the SMSC."""
        return await self._bounded(self._collect, self.config.timeout * 3 + self.config.linger)

    async def _bounded(self, func: Callable[..., T], deadline: float, *args: Any) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(func, *args), deadline)
        except TimeoutError as exc:
            raise TemporaryFailure("the SMSC exchange took too long") from exc

    def _send(self, destination: str, parts: list[bytes], coding: int, esm_class: int) -> SendResult:
        with _Link(self.config) as link:
            refs = [link.submit(destination, part, coding, esm_class) for part in parts]
            link.linger(self.config.linger)
            return SendResult(provider=self.name, refs=[r for r in refs if r], parts=len(parts), inbound=link.inbound)

    def _collect(self) -> list[Receipt | Reply]:
        with _Link(self.config) as link:
            link.linger(self.config.linger)
            return link.inbound
