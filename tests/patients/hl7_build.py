"""Builders of HL7 v2 messages for the HL7 and results tests (plain module, not a test)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "hl7v2"  # public samples, with their licence

ID_CARD = "11010519491231002X"  # GB 11643: valid checksum, born 1949-12-31, female
ID_CARD_2 = "440301199003071230"  # born 1990-03-07, male


def msh(message_type: str, control: str, *, version: str = "2.5", charset: str = "", sender: str = "HIS") -> str:
    fields = ["MSH", "^~\\&", sender, "HOSP", "PL", "CC", "20261123100000", "", message_type, control, "P", version]
    if charset:
        fields += ["", "", "", "", "", charset]
    return "|".join(fields)


def pid(
    pid3: str = "M001^^^HIS^MR",
    name: str = "王^小明",
    birth: str = "19800101",
    sex: str = "M",
    phones: str = "13800138000",
    work_phone: str = "",
) -> str:
    return f"PID|1||{pid3}||{name}||{birth}|{sex}|||||{phones}|{work_phone}"


def adt(trigger: str = "A01", control: str = "C1", *, segments: list[str] | None = None, **kwargs: str) -> str:
    header = msh(
        f"ADT^{trigger}^ADT_{trigger}",
        control,
        **{k: kwargs.pop(k) for k in ("charset", "version", "sender") if k in kwargs},
    )
    body = segments if segments is not None else [f"EVN|{trigger}|20261123100000", pid(**kwargs)]
    return "\r".join([header, *body]) + "\r"


def oru(
    control: str = "R1",
    *,
    order: str = "LAB-1001",
    status: str = "F",
    name: str = "血常规",
    section: str = "HM",
    pid_segment: str | None = None,
    observations: list[str] | None = None,
    issued: str = "20261123093000+0800",
) -> str:
    obxs = observations if observations is not None else [
        "OBX|1|NM|718-7^血红蛋白^LN||135|g/L|115-150|N|||F",
        "OBX|2|NM|6690-2^白细胞^LN||11.2|10*9/L|3.5-9.5|H|||F",
    ]  # fmt: skip
    obr = f"OBR|1|P-{order}|{order}|{name}^{name}^L|||20261123080000|||||||||||||||{issued}||{section}|{status}"
    return "\r".join([msh("ORU^R01^ORU_R01", control), pid_segment or pid(), obr, *obxs]) + "\r"
