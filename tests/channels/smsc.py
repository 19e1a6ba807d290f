"""A real SMSC for the tests: smppy (from PyPI) on 127.0.0.1 in a thread with its own event loop.

smppy answers submit_sm with an empty message_id; this one assigns ids (as every real SMSC does),
records each submit_sm as it arrived (coding, esm_class, bytes), and can push delivery receipts and
mobile-originated texts to the bound client."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

with warnings.catch_warnings():  # smpp.pdu declares its namespace through pkg_resources
    warnings.simplefilter("ignore")
    from smpp.pdu import constants
    from smpp.pdu.operations import DeliverSM, SubmitSMResp
    from smpp.pdu.pdu_encoding import PDUEncoder
    from smpp.pdu.pdu_types import (
        AddrNpi,
        AddrTon,
        CommandId,
        DataCoding,
        DataCodingDefault,
        EsmClass,
        EsmClassMode,
        EsmClassType,
        MessageState,
        RegisteredDelivery,
        RegisteredDeliveryReceipt,
        ReplaceIfPresentFlag,
    )
    from smppy import Application
    from smppy.server import SmppProtocol


@dataclass
class Submitted:
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    message_id: str


@dataclass
class SMSC(Application):
    """`receipts`: 'DELIVRD' or 'UNDELIV' pushes a receipt for every part; `refuse_with`: answer
    submit_sm with this command status instead."""

    submitted: list[Submitted] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    receipts: str | None = None
    refuse_with: str | None = None  # a command status name, e.g. ESME_RTHROTTLED
    push_on_bind: list[tuple[str, str]] = field(default_factory=list)  # (source, text) MO texts
    binds: int = 0

    def __post_init__(self) -> None:
        super().__init__("test-smsc")

    async def handle_bound_client(self, client: Any) -> Any:
        self.binds += 1
        return client

    async def handle_unbound_client(self, client: Any) -> None:
        return None

    async def handle_sms_received(self, client: Any, source_number: str, dest_number: str, text: str) -> None:
        self.texts.append(text)


class Protocol(SmppProtocol):  # type: ignore[misc]
    app: SMSC

    async def handle_data_received(self, data: bytes) -> None:
        pdu = PDUEncoder().decode(io.BytesIO(data))
        if pdu.command_id == CommandId.submit_sm:
            await self._submit(pdu)
            return
        await super().handle_data_received(data)
        if pdu.command_id == CommandId.bind_transceiver:
            for source, text in self.app.push_on_bind:
                asyncio.get_running_loop().call_later(0.05, self._mo, source, text)

    async def _submit(self, pdu: Any) -> None:
        params = pdu.params
        message_id = f"M{len(self.app.submitted) + 1}"
        self.app.submitted.append(
            Submitted(
                destination=_s(params["destination_addr"]),
                data_coding=_coding(params["data_coding"]),
                esm_class=_esm(params["esm_class"]),
                registered_delivery=constants.registered_delivery_receipt_name_map[
                    str(params["registered_delivery"].receipt)
                ],
                short_message=params["short_message"],
                message_id=message_id,
            )
        )
        if self.app.refuse_with is not None:
            self._send_PDU(SubmitSMResp(sequence_number=pdu.sequence_number, status=self.app.refuse_with))
            return
        self._send_PDU(SubmitSMResp(sequence_number=pdu.sequence_number, message_id=message_id))
        if self.app.receipts:
            asyncio.get_running_loop().call_later(0.05, self._receipt, message_id, params["destination_addr"])

    def _receipt(self, message_id: str, destination: Any) -> None:
        stat = self.app.receipts or "DELIVRD"
        text = f"id:{message_id} sub:001 dlvr:001 submit date:2611230900 done date:2611230900 stat:{stat} err:000 text:"
        self._deliver(
            _s(destination),
            text.encode(),
            EsmClassType.SMSC_DELIVERY_RECEIPT,
            DataCodingDefault.SMSC_DEFAULT_ALPHABET,
            receipted_message_id=message_id,
            message_state=MessageState.DELIVERED if stat == "DELIVRD" else MessageState.UNDELIVERABLE,
        )

    def _mo(self, source: str, text: str) -> None:
        try:
            raw, coding = text.encode("ascii"), DataCodingDefault.SMSC_DEFAULT_ALPHABET
        except UnicodeEncodeError:
            raw, coding = text.encode("utf-16-be"), DataCodingDefault.UCS2
        self._deliver(source, raw, EsmClassType.DEFAULT, coding)

    def _deliver(self, source: str, raw: bytes, kind: Any, coding: Any, **optional: Any) -> None:
        pdu = DeliverSM(
            sequence_number=self.next_sequence_number(),
            service_type=None,
            source_addr_ton=AddrTon.INTERNATIONAL,
            source_addr_npi=AddrNpi.ISDN,
            source_addr=source,
            dest_addr_ton=AddrTon.UNKNOWN,
            dest_addr_npi=AddrNpi.ISDN,
            destination_addr="HOSP",
            esm_class=EsmClass(EsmClassMode.DEFAULT, kind),
            protocol_id=None,
            priority_flag=None,
            registered_delivery=RegisteredDelivery(RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED),
            replace_if_present_flag=ReplaceIfPresentFlag.DO_NOT_REPLACE,
            data_coding=DataCoding(scheme_data=coding),
            short_message=raw,
            **optional,
        )
        self._send_PDU(pdu)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _coding(value: Any) -> int:
    return int(constants.data_coding_default_name_map[str(value.scheme_data)])


def _esm(value: Any) -> int:
    """The GSM feature bits (smpp.pdu's enums are names)."""
    return sum(constants.esm_class_gsm_features_name_map[str(f)] for f in value.gsm_features)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RunningSMSC:
    """`with RunningSMSC() as smsc:` an SMSC on a free port, stopped (bounded wait) at the end."""

    def __init__(self, **options: Any) -> None:
        self.app = SMSC(**options)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            self.loop.create_server(lambda: Protocol(app=self.app), host="127.0.0.1", port=self.port)
        )
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

    def __enter__(self) -> SMSC:
        self._thread.start()
        assert self._ready.wait(5), "the SMSC did not start"
        return self.app

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
