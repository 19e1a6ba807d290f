"""What the plant, the controller and the media workers agree on (kept light: every worker loads it)."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RTP_PORTS = 8  # media ports per worker: RTP and RTCP for each of its four calls

SELF_TEST_HEADER = "X-PatientLine-Self-Test"  # the line's own test calls carry a secret token in it


@dataclass(frozen=True)
class Seat:
    """Where one media worker sits: its SIP port, its control socket, its first media port and its log."""

    sip_port: int
    control: Path
    rtp_port: int  # the first of its RTP_PORTS media ports
    log: Path

    @property
    def name(self) -> str:
        return f"w{self.sip_port}"

    @property
    def title(self) -> str:
        """The worker's command line as `ps` shows it, as if it had been started on its own."""
        return f"patientline.voice.worker --sip-port {self.sip_port} --control {self.control}"


def write_seats(path: Path, seats: list[Seat]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(seat) for seat in seats], default=str))
    return path


def read_seats(path: Path) -> list[Seat]:
    return [Seat(row["sip_port"], Path(row["control"]), row["rtp_port"], Path(row["log"]))
            for row in json.loads(path.read_text())]  # fmt: skip
