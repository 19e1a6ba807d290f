"""HL7 v2 inbound: every public sample, messages built here (Chinese names, families, merges), and bad input
(garbage, wrong separators, truncated segments, bad encodings) answered AR/AE with nothing written."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from hl7_build import ID_CARD, ID_CARD_2, SAMPLES, adt, msh, oru, pid
from sqlalchemy import event, func, select

from patientline.core import clock, jobs
from patientline.core.audit import AuditEntry
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.patients import index, sweeps  # noqa: F401 - registers the sweepers
from patientline.patients.hl7 import Answer, Hl7Inbox
from patientline.patients.models import Hl7Message, Patient, PatientMerge, PatientResult


def segments(answer: Answer, codec: str = "utf-8") -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for line in answer.ack.decode(codec).split("\r"):
        if line:
            found.setdefault(line[:3], []).append(line.split("|"))
    return found


def err_codes(answer: Answer) -> list[str]:
    return [row[3].split("^")[0] for row in segments(answer).get("ERR", [])]


@pytest.fixture
def inbox(db: Any, settings: Settings) -> Hl7Inbox:
    return Hl7Inbox(db, settings)


async def count(db: Any, model: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def patient_by(db: Any, kind: str, value: str) -> Patient | None:
    async with db.sessions() as session:
        return await index.find_by_identifier(session, kind, value)


# --- the public samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.hl7")), ids=lambda p: p.stem)
async def test_every_public_sample(path: Any, inbox: Hl7Inbox, db: Any) -> None:
    before = await count(db, Patient)
    answer = await inbox.receive(path.read_bytes())
    ack = segments(answer)
    kind = path.stem.split("-")[0]
    if kind in ("ADT", "ORU"):
        assert answer.code == "AA", answer.ack
        assert ack["MSA"][0][1] == "AA"
        assert await count(db, Patient) > before or path.stem.startswith("ADT-A03")
    else:  # SIU, ORM, OML: not taken here, rejected with "unsupported message type"
        assert answer.code == "AR"
        assert err_codes(answer) == ["200"]
        assert await count(db, Patient) == before
        assert await count(db, Hl7Message) == 0
    original = path.read_text(encoding="utf-8-sig").split("\n")[0].split("|")
    assert ack["MSA"][0][2] == original[9]  # the original control id
    assert ack["MSH"][0][2:6] == [original[4], original[5], original[2], original[3]]  # sender and receiver swapped
    assert ack["MSH"][0][9] != original[9]


async def test_sample_results_and_merges(inbox: Hl7Inbox, db: Any) -> None:
    for name in ("ORU-R01-RMGEAD", "ORU-R01-01", "ADT-A01-01", "ADT-A40-02"):
        assert (await inbox.receive((SAMPLES / f"{name}.hl7").read_bytes())).code == "AA"
    async with db.sessions() as session:
        rows = {r.order_number: r for r in await session.scalars(select(PatientResult))}
    assert rows["1045813"].status == "final" and rows["1045813"].name == "GLUCOSE"
    assert (rows["986"].status, rows["986"].category) == ("final", "lab")  # OBR-25 F, OBR-24 BLB (blood bank)
    assert rows["986"].conclusion == ""  # results_show_content is off
    assert (await patient_by(db, "mrn", "PATID1234")) is not None
    survivor = await patient_by(db, "mrn", "12345")
    assert survivor is not None and survivor.name == "Test Test A" and survivor.sex == "female"


# --- ADT: the index kept fresh ------------------------------------------------------------------------------


async def test_a01_chinese_patient_then_a08_update(inbox: Hl7Inbox, db: Any) -> None:
    message = adt("A01", "C1", pid3=f"M001^^^HIS^MR~{ID_CARD}^^^CHN^NNCHN~HIS-77^^^HIS^PI", name="王^小红",
                  birth="19491231", sex="F", phones="13800138000~^PRN^PH^^86^10^65550000")  # fmt: skip
    answer = await inbox.receive(message.encode())
    assert answer.code == "AA", answer.ack
    patient = await patient_by(db, "id_card", ID_CARD)
    assert patient is not None
    assert (patient.name, patient.sex, str(patient.birth_date), patient.his_id) == ("王小红", "female", "1949-12-31",
                                                                                     "HIS-77")  # fmt: skip
    assert patient.name_pinyin.startswith("wangxiaohong")
    async with db.sessions() as session:
        phones = sorted(p.phone for p in await session.scalars(select(index.PatientPhone)))
        actors = set(await session.scalars(select(AuditEntry.actor_name).where(AuditEntry.action == "patients.synced")))
    assert phones == ["+861065550000", "+8613800138000"]
    assert actors == {"hl7"}
    update = adt("A08", "C2", pid3="M001^^^HIS^MR~HIS-77^^^HIS^PI", name="王^晓红", birth="19491231", sex="F")
    assert (await inbox.receive(update.encode())).code == "AA"
    again = await patient_by(db, "mrn", "M001")
    assert again is not None and again.id == patient.id and again.name == "王晓红"
    assert await count(db, Patient) == 1


async def test_a04_and_a31_update_the_index(inbox: Hl7Inbox, db: Any) -> None:
    assert (await inbox.receive(adt("A04", "C1", pid3="M009^^^HIS^MR", name="Li^Lei").encode())).code == "AA"
    assert (await inbox.receive(adt("A31", "C2", pid3="M009^^^HIS^MR", name="李^雷").encode())).code == "AA"
    patient = await patient_by(db, "mrn", "M009")
    assert patient is not None and patient.name == "李雷"


async def test_a_family_sharing_a_phone_are_two_patients(inbox: Hl7Inbox, db: Any) -> None:
    mother = adt("A04", "F1", pid3=f"M100^^^HIS^MR~{ID_CARD}^^^CHN^NNCHN", name="张^丽", birth="19491231", sex="F",
                 phones="13911112222")  # fmt: skip
    child = adt("A04", "F2", pid3="M101^^^HIS^MR", name="张^小宝", birth="20180601", sex="M", phones="139-1111-2222")
    for message in (mother, child):
        assert (await inbox.receive(message.encode())).code == "AA"
    async with db.sessions() as session:
        family = await index.find_by_phone(session, "+8613911112222")
    assert sorted(p.name for p in family) == ["张丽", "张小宝"]


async def test_phones_that_cannot_exist_are_left_out_with_a_warning(inbox: Hl7Inbox, db: Any) -> None:
    answer = await inbox.receive(adt(phones="12345~13800138000", work_phone="(111)111-1111").encode())
    assert answer.code == "AA"
    err = segments(answer)["ERR"]
    assert [row[4] for row in err] == ["W"] and "2 phone number(s)" in err[0][8]
    async with db.sessions() as session:
        assert [p.phone for p in await session.scalars(select(index.PatientPhone))] == ["+8613800138000"]


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"pid3": "M001^^^HIS^MR~110105194912310021^^^CHN^NNCHN"}, "check digit"),
        ({"birth": "20230231"}, "PID-7"),
        ({"birth": "29990101"}, "PID-7"),
        ({"birth": "18500101"}, "PID-7"),
        ({"birth": "yesterday"}, "PID-7"),
        ({"pid3": ""}, "PID-3"),
        ({"name": ""}, "PID-5"),
    ],
    ids=["id-card-checksum", "impossible-date", "future-birth", "before-1900", "not-a-date", "no-pid3", "no-name"],
)  # fmt: skip
async def test_bad_content_is_ae_and_writes_nothing(
    changes: dict[str, str], text: str, inbox: Hl7Inbox, db: Any
) -> None:
    answer = await inbox.receive(adt("A01", "BAD1", **changes).encode())
    assert answer.code == "AE", answer.ack
    ack = segments(answer)
    assert ack["MSA"][0][2] == "BAD1" and text in ack["MSA"][0][3]
    assert ack["ERR"][0][4] == "E" and text in ack["ERR"][0][8]
    assert await count(db, Patient) == 0
    assert await count(db, Hl7Message) == 0
    assert await count(db, AuditEntry) == 0


async def test_truncated_pid_is_ae(inbox: Hl7Inbox, db: Any) -> None:
    answer = await inbox.receive(adt(segments=["EVN|A01", "PID|1"]).encode())
    assert answer.code == "AE" and err_codes(answer) == ["101"]
    answer = await inbox.receive(adt(segments=["EVN|A01"]).encode())
    assert answer.code == "AE" and "PID segment is missing" in segments(answer)["ERR"][0][8]
    assert await count(db, Patient) == 0


# --- A40: merges that keep every identifier -----------------------------------------------------------------


async def test_a40_merges_and_every_identifier_still_finds_the_survivor(inbox: Hl7Inbox, db: Any) -> None:
    survivor = adt("A01", "M1", pid3=f"M200^^^HIS^MR~{ID_CARD_2}^^^CHN^NNCHN", name="陈^伟", birth="19900307",
                   phones="13700001111")  # fmt: skip
    duplicate = adt("A04", "M2", pid3="M201^^^HIS^MR~HC-5566^^^HIS^HC", name="陈^伟", birth="19900307",
                    phones="13700002222")  # fmt: skip
    for message in (survivor, duplicate):
        assert (await inbox.receive(message.encode())).code == "AA"
    kept = await patient_by(db, "mrn", "M200")
    gone = await patient_by(db, "mrn", "M201")
    assert kept is not None and gone is not None and kept.id != gone.id
    survivor_pid = pid(pid3=f"M200^^^HIS^MR~{ID_CARD_2}^^^CHN^NNCHN", name="陈^伟", birth="19900307",
                       phones="13700001111")  # fmt: skip
    merge = adt("A40", "M3", segments=["EVN|A40", survivor_pid, "MRG|M201^^^HIS^MR"])
    first = await inbox.receive(merge.encode())
    assert first.code == "AA", first.ack
    for kind, value in (("mrn", "M200"), ("mrn", "M201"), ("id_card", ID_CARD_2), ("health_card", "HC-5566")):
        found = await patient_by(db, kind, value)
        assert found is not None and found.id == kept.id, (kind, value)
    async with db.sessions() as session:
        merges = list(await session.scalars(select(PatientMerge)))
        phones = set(
            await session.scalars(select(index.PatientPhone.phone).where(index.PatientPhone.patient_id == kept.id))
        )
        old = await session.get(Patient, gone.id)
    assert [(m.survivor_id, m.merged_id, m.source) for m in merges] == [(kept.id, gone.id, "hl7")]
    assert phones == {"+8613700001111", "+8613700002222"}
    assert old is not None and old.merged_into_id == kept.id  # the duplicate stays, pointing at the survivor
    again = await inbox.receive(merge.encode())
    assert again.replayed and again.ack == first.ack
    assert await count(db, PatientMerge) == 1


async def test_a40_when_the_survivor_was_known_by_the_prior_number_only(inbox: Hl7Inbox, db: Any) -> None:
    """The HIS renumbered the person: our record had the old MRN and the ID card; the new MRN arrives in A40."""
    old = adt("A01", "N1", pid3=f"OLD-1^^^HIS^MR~{ID_CARD_2}^^^CHN^NNCHN", name="陈^伟", birth="19900307")
    assert (await inbox.receive(old.encode())).code == "AA"
    renumbered = pid(pid3=f"NEW-1^^^HIS^MR~{ID_CARD_2}^^^CHN^NNCHN", name="陈^伟", birth="19900307")
    merge = adt("A40", "N2", segments=[renumbered, "MRG|OLD-1^^^HIS^MR"])
    assert (await inbox.receive(merge.encode())).code == "AA"
    new, previous = await patient_by(db, "mrn", "NEW-1"), await patient_by(db, "mrn", "OLD-1")
    assert new is not None and previous is not None and new.id == previous.id
    assert await count(db, Patient) == 1


async def test_a40_without_mrg_or_with_an_unknown_prior(inbox: Hl7Inbox, db: Any) -> None:
    answer = await inbox.receive(adt("A40", "X1", segments=[pid()]).encode())
    assert answer.code == "AE" and await count(db, Patient) == 0
    answer = await inbox.receive(adt("A40", "X2", segments=[pid(), "MRG|"]).encode())
    assert answer.code == "AE" and "MRG-1" in segments(answer)["ERR"][0][8]
    answer = await inbox.receive(adt("A40", "X3", segments=[pid(), "MRG|NOBODY^^^HIS^MR"]).encode())
    assert answer.code == "AA" and segments(answer)["ERR"][-1][4] == "I"
    assert await count(db, Patient) == 1 and await count(db, PatientMerge) == 0


# --- resends --------------------------------------------------------------------------------------------------


async def test_a_resend_gets_the_same_ack_and_changes_nothing(inbox: Hl7Inbox, db: Any) -> None:
    message = adt("A01", "RESEND-1").encode()
    first = await inbox.receive(message)
    second = await inbox.receive(message)
    assert first.code == second.code == "AA" and second.replayed and not first.replayed
    assert second.ack == first.ack
    async with db.sessions() as session:
        synced = await session.scalar(select(func.count()).where(AuditEntry.action == "patients.synced"))
    assert synced == 1
    assert await count(db, Hl7Message) == 1
    other_content = await inbox.receive(adt("A08", "RESEND-1", name="王^小刚").encode())
    assert other_content.code == "AA" and not other_content.replayed  # a control id reused for another message
    other_sender = await inbox.receive(adt("A01", "RESEND-1", sender="LIS").encode())
    assert not other_sender.replayed


async def test_concurrent_resends_take_effect_once(inbox: Hl7Inbox, db: Any) -> None:
    message = adt("A01", "TWICE", pid3="M300^^^HIS^MR").encode()
    answers = await asyncio.gather(*(inbox.receive(message) for _ in range(4)))
    assert {a.code for a in answers} == {"AA"}
    assert len({a.ack for a in answers}) == 1
    assert await count(db, Hl7Message) == 1 and await count(db, Patient) == 1


async def test_messages_arriving_together_share_a_commit_and_each_gets_its_ack(inbox: Hl7Inbox, db: Any) -> None:
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda connection: commits.append(1))
    messages = [adt("A01", f"T{k}", pid3=f"M9{k:02d}^^^HIS^MR", phones=f"1380013{k:04d}") for k in range(10)]
    messages += [oru(f"TR{k}", order=f"LAB-9{k}", pid_segment=pid(pid3=f"M8{k:02d}^^^HIS^MR")) for k in range(6)]
    answers = await asyncio.gather(*(inbox.receive(m.encode()) for m in messages))
    assert [a.code for a in answers] == ["AA"] * 16
    assert [segments(a)["MSA"][0][2] for a in answers] == [f"T{k}" for k in range(10)] + [f"TR{k}" for k in range(6)]
    assert len(commits) < len(messages)  # written in rounds, not one transaction each
    assert await count(db, Patient) == 16 and await count(db, PatientResult) == 6
    assert await count(db, Hl7Message) == 16
    for k in range(10):
        found = await patient_by(db, "mrn", f"M9{k:02d}")
        assert found is not None
        async with db.sessions() as session:
            assert [p.id for p in await index.find_by_phone(session, f"+861380013{k:04d}")] == [found.id]


async def test_a_record_and_a_result_for_one_new_patient_arriving_together(inbox: Hl7Inbox, db: Any) -> None:
    record = adt("A01", "NEW-1", pid3="M777^^^HIS^MR~" + ID_CARD + "^^^CHN^NNCHN", birth="19491231", sex="F")
    result = oru("NEW-R1", order="LAB-777", pid_segment=pid(pid3="M777^^^HIS^MR"))
    answers = await asyncio.gather(inbox.receive(record.encode()), inbox.receive(result.encode()))
    assert [a.code for a in answers] == ["AA", "AA"]
    assert await count(db, Patient) == 1  # one after the other: the result found the patient the record added
    patient = await patient_by(db, "id_card", ID_CARD)
    async with db.sessions() as session:
        owner = await session.scalar(select(PatientResult.patient_id).where(PatientResult.order_number == "LAB-777"))
    assert patient is not None and owner == patient.id


async def test_a_resend_among_new_messages_spoils_none_of_them(inbox: Hl7Inbox, db: Any) -> None:
    accepted = adt("A01", "OLD-1", pid3="M600^^^HIS^MR").encode()
    first = await inbox.receive(accepted)
    fresh = [adt("A01", f"FRESH-{k}", pid3=f"M61{k}^^^HIS^MR").encode() for k in range(5)]
    answers = await asyncio.gather(*(inbox.receive(m) for m in [*fresh[:2], accepted, *fresh[2:]]))
    assert [a.code for a in answers] == ["AA"] * 6
    assert [a.replayed for a in answers] == [False, False, True, False, False, False]
    assert answers[2].ack == first.ack
    assert await count(db, Patient) == 6 and await count(db, Hl7Message) == 6


async def test_closing_finishes_what_senders_left_behind(inbox: Hl7Inbox, db: Any) -> None:
    messages = [adt("A01", f"LEFT-{k}", pid3=f"M70{k}^^^HIS^MR").encode() for k in range(3)]
    senders = [asyncio.ensure_future(inbox.receive(m)) for m in messages]
    await asyncio.sleep(0)  # each is read and waiting for its round
    for sender in senders:
        sender.cancel()  # the connections drop before their ACKs
    await inbox.close()
    assert all(sender.cancelled() for sender in senders)
    assert await count(db, Hl7Message) == 3 and await count(db, Patient) == 3
    again = await inbox.receive(messages[0])  # the interface engine sends it again
    assert again.code == "AA" and again.replayed


async def test_accepted_messages_are_forgotten_after_the_retention_period(
    inbox: Hl7Inbox, db: Any, settings: Settings
) -> None:
    old, recent = adt("A01", "OLD", pid3="M801^^^HIS^MR").encode(), adt("A01", "NEW", pid3="M802^^^HIS^MR").encode()
    await inbox.receive(old)
    clock.set_now(clock.now() + timedelta(days=31))
    await inbox.receive(recent)
    sweep = jobs.SWEEPERS["patients.hl7_retention"]
    async with db.sessions() as session, session.begin():
        await sweep.run(session, settings)
    async with db.sessions() as session:
        assert list(await session.scalars(select(Hl7Message.control_id))) == ["NEW"]
    assert await count(db, Patient) == 2  # only the memory of the message goes, never its effects
    assert (await inbox.receive(recent)).replayed and not (await inbox.receive(old)).replayed


async def test_a_database_that_fails_gets_ae_not_silence(settings: Settings, tmp_path: Any) -> None:
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing-folder/none.db")
    inbox = Hl7Inbox(broken, settings)
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(inbox.receive(adt("A01", f"DOWN-{k}", pid3=f"M90{k}^^^HIS^MR").encode())
                             for k in range(3))), timeout=30)  # fmt: skip
    finally:
        await broken.dispose()
    assert [a.code for a in answers] == ["AE"] * 3
    assert all(err_codes(a) == ["207"] for a in answers)


# --- bad input: AR ------------------------------------------------------------------------------------------

PID_LINE = b"\rPID|1||M1||A^B"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "100"),
        (b"hello, this is not HL7", "100"),
        (b"\x00\xff\xfe garbage \x13", "100"),
        (b"PID|1||M001^^^HIS^MR", "100"),
        (b"MSH|^~\\&|HIS", "101"),
        (b"MSH|^~|HIS|HOSP|PL|CC|20261123||ADT^A01|C1|P|2.5" + PID_LINE, "102"),
        (b"MSH|^^\\&|HIS|HOSP|PL|CC|20261123||ADT^A01|C1|P|2.5" + PID_LINE, "102"),
        (b"MSHA^~\\&AHISAHOSP", "102"),
        (msh("ADT^A01", "C1").encode() + b"\rthis line is no segment" + PID_LINE, "100"),
        (msh("ADT^A01", "C1").encode() + PID_LINE + b"\x07", "102"),
        ((msh("ADT^A01", "C1") + "\r" + msh("ADT^A01", "C2")).encode(), "100"),
        (msh("", "C1").encode() + PID_LINE, "101"),
        (msh("ADT^A01", "").encode() + PID_LINE, "101"),
        (msh("ADT^A01", "C1", version="3.0").encode() + PID_LINE, "203"),
        (msh("ADT^A01", "C1", version="").encode() + PID_LINE, "203"),
        (msh("ADT^A01", "C1").replace("|P|", "|X|").encode() + PID_LINE, "202"),
        (msh("ADT", "C1").encode() + PID_LINE, "201"),
        (msh("ORU^R02", "C1").encode() + PID_LINE, "200"),
        (msh("ACK^A01", "C1").encode() + b"\rMSA|AA|X", "200"),
        (msh("ADT^A01", "C1", charset="EBCDIC").encode() + PID_LINE, "103"),
        (msh("ADT^A01", "C1").encode() + "\rPID|1||M1||王^小明".encode("gb18030"), "102"),
        (msh("ADT^A01", "C1", charset="UNICODE UTF-8").encode() + "\rPID|1||M1||王^小明".encode("gb18030"), "102"),
    ],
    ids=["empty", "text", "binary", "no-msh", "msh-truncated", "three-encoding-chars", "repeated-encoding-char",
         "alphanumeric-separator", "garbage-line", "control-character", "two-messages", "no-type", "no-control-id",
         "version-3", "no-version", "processing-id", "no-trigger", "oru-r02", "ack", "unknown-charset",
         "gb18030-undeclared", "gb18030-declared-utf8"],
)  # fmt: skip
async def test_malformed_messages_are_rejected(raw: bytes, code: str, inbox: Hl7Inbox, db: Any) -> None:
    answer = await inbox.receive(raw)
    assert answer.code == "AR", answer.ack
    ack = segments(answer)
    assert ack["MSA"][0][1] == "AR" and ack["MSA"][0][3]
    assert err_codes(answer) == [code]
    assert await count(db, Patient) == 0 and await count(db, Hl7Message) == 0


async def test_utf8_bom_and_lf_line_ends_are_taken(inbox: Hl7Inbox, db: Any) -> None:
    message = b"\xef\xbb\xbf" + adt().replace("\r", "\r\n").encode()
    assert (await inbox.receive(message)).code == "AA"
    assert await count(db, Patient) == 1


async def test_gb18030_message_is_read_and_answered_in_gb18030(inbox: Hl7Inbox, db: Any) -> None:
    message = adt("A01", "G1", charset="GB 18030-2000", sender="老HIS", name="欧阳^娜娜", pid3="GB-1^^^HIS^MR")
    answer = await inbox.receive(message.encode("gb18030"))
    assert answer.code == "AA", answer.ack
    ack = segments(answer, "gb18030")
    assert ack["MSH"][0][4] == "老HIS" and ack["MSH"][0][17] == "GB 18030-2000"
    patient = await patient_by(db, "mrn", "GB-1")
    assert patient is not None and patient.name == "欧阳娜娜"


async def test_escaped_separators_are_read(inbox: Hl7Inbox, db: Any) -> None:
    assert (await inbox.receive(adt(name="O\\T\\Brien^Pat\\S\\rick", pid3="E-1^^^HIS^MR").encode())).code == "AA"
    patient = await patient_by(db, "mrn", "E-1")
    assert patient is not None and patient.name == "O&Brien Pat^rick"


# --- ORU^R01 -------------------------------------------------------------------------------------------------


async def test_oru_creates_the_patient_and_records_statuses(inbox: Hl7Inbox, db: Any) -> None:
    assert (await inbox.receive(oru("R1", status="P").encode())).code == "AA"
    async with db.sessions() as session:
        row = await session.scalar(select(PatientResult))
    assert row is not None
    assert (row.order_number, row.status, row.category, row.name, row.source) == ("LAB-1001", "preliminary", "lab",
                                                                                   "血常规", "hl7")  # fmt: skip
    assert row.issued_at is not None and row.issued_at.isoformat() == "2026-11-23T01:30:00+00:00"
    assert (await inbox.receive(oru("R2", status="F", issued="20261123103000+0800").encode())).code == "AA"
    async with db.sessions() as session:
        rows = list(await session.scalars(select(PatientResult)))
    assert [r.status for r in rows] == ["final"] and rows[0].conclusion == ""
    late = oru("R3", status="P", issued="20261123090000+0800")  # an older report arriving late changes nothing
    assert (await inbox.receive(late.encode())).code == "AA"
    async with db.sessions() as session:
        assert list(await session.scalars(select(PatientResult.status))) == ["final"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("F", "final"), ("C", "corrected"), ("P", "preliminary"), ("I", "registered"), ("R", "registered"),
     ("S", "registered"), ("X", "cancelled")],
)  # fmt: skip
async def test_oru_status_mapping(status: str, expected: str, inbox: Hl7Inbox, db: Any) -> None:
    assert (await inbox.receive(oru(status=status).encode())).code == "AA"
    async with db.sessions() as session:
        assert await session.scalar(select(PatientResult.status)) == expected


async def test_oru_imaging_by_section_or_name_and_content_when_allowed(db: Any, settings: Settings) -> None:
    inbox = Hl7Inbox(db, settings.model_copy(update={"results_show_content": True}))
    assert (await inbox.receive(oru("I1", order="RIS-1", name="胸部CT平扫", section="").encode())).code == "AA"
    assert (await inbox.receive(oru("I2", order="RIS-2", name="Chest", section="RAD").encode())).code == "AA"
    assert (await inbox.receive(oru("I3", order="LIS-3", name="肝功能", section="").encode())).code == "AA"
    async with db.sessions() as session:
        rows = {r.order_number: r for r in await session.scalars(select(PatientResult))}
    assert {k: r.category for k, r in rows.items()} == {"RIS-1": "imaging", "RIS-2": "imaging", "LIS-3": "lab"}
    assert rows["LIS-3"].conclusion == "血红蛋白: 135 g/L [N]\n白细胞: 11.2 10*9/L [H]"


async def test_oru_with_bad_parts_writes_nothing(inbox: Hl7Inbox, db: Any) -> None:
    no_order = oru("B1").replace("|P-LAB-1001|LAB-1001|", "|||")
    answer = await inbox.receive(no_order.encode())
    assert answer.code == "AE" and "order numbers" in segments(answer)["ERR"][0][8]
    no_obr = "\r".join(line for line in oru("B2").split("\r") if not line.startswith(("OBR", "OBX")))
    assert (await inbox.receive(no_obr.encode())).code == "AE"
    bad_pid = oru("B3", pid_segment=pid(pid3=""))
    assert (await inbox.receive(bad_pid.encode())).code == "AE"
    assert await count(db, Patient) == 0 and await count(db, PatientResult) == 0
