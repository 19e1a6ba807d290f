"""Real SIP for the voice tests: sipp callers (G.711 audio, RFC 2833 keys) and test phones (a media
worker registered as an agent, answering on its own and recording what it hears). bench/voice.py places
its callers with the same scenarios."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PCAPS = Path("/usr/share/sip-tester")
AUDIO_PCAP = PCAPS / "g711a.pcap"  # 7.05 s of speech
PHONE_RTP = 40000  # test phones' media ports: 8 each from here, by their SIP port
HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {payloads}
{rtpmaps}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""
ANSWERED = """  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Content-Length: 0

]]></send>
"""
BYE = """  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
[routes]
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""
REFUSED = """  <recv response="{code}"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]T[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Content-Length: 0

]]></send>
</scenario>
"""
G711 = ("8 101", "a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000")


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def keys(digits: str, gap_ms: int = 400) -> str:
    """RFC 2833 key presses, one pcap per key."""
    names = {"*": "star", "#": "pound"}
    steps = ""
    for digit in digits:
        pcap = PCAPS / f"dtmf_2833_{names.get(digit, digit)}.pcap"
        steps += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n' + pause(gap_ms)
    return steps


def speech(ms: int = 7200) -> str:
    return f'  <nop><action><exec play_pcap_audio="{AUDIO_PCAP}"/></action></nop>\n' + pause(ms)


def scenario(steps: str, *, caller: str = "13800138000", media: tuple[str, str] = G711) -> str:
    return (
        HEAD.format(caller=caller, payloads=media[0], rtpmaps=media[1])
        + ANSWERED.format(caller=caller)
        + steps
        + BYE.format(caller=caller)
    )


def refused_scenario(code: int, *, caller: str = "13800138000", media: tuple[str, str] = G711) -> str:
    return HEAD.format(caller=caller, payloads=media[0], rtpmaps=media[1]) + REFUSED.format(code=code, caller=caller)


@dataclass
class Sipp:
    """sipp as one caller (or several, one after another) into the SIP front."""

    directory: Path
    front_port: int
    port: int
    media_port: int

    def call(self, xml: str, *, number: str = "8585", calls: int = 1, limit: int = 1, timeout_s: int = 60,
             background: bool = False) -> subprocess.Popen[bytes] | int:  # fmt: skip
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"scenario-{self.port}.xml"
        path.write_text(xml)
        command = ["sipp", "-sf", str(path), "-s", number, f"127.0.0.1:{self.front_port}", "-i", "127.0.0.1",
                   "-p", str(self.port), "-mp", str(self.media_port), "-nostdin", "-m", str(calls), "-l", str(limit),
                   "-timeout", str(timeout_s), "-timeout_error", "-trace_err",
                   "-error_file", str(self.directory / f"errors-{self.port}.log")]  # fmt: skip
        process = subprocess.Popen(command, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if background:
            return process
        return process.wait(timeout_s + 30)


@dataclass
class Phone:
    """A test phone: a media worker registered at the SIP front as `user`, controlled from the test."""

    user: str
    sip_port: int
    front_port: int
    directory: Path
    password: str = ""  # the desk phone's password at the SIP front (the demo's: the demo password)
    login: str = ""  # the account whose password it is (`user` unless a test poses as someone else)
    registered: dict[str, Any] = field(default_factory=dict)  # the registrar's answer
    process: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""

    def start(self, *, auto_answer: bool = True) -> Phone:
        control = self.directory / f"phone-{self.sip_port}.sock"
        log = open(self.directory / f"phone-{self.sip_port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "patientline.voice.worker", "--sip-port",
                                         str(self.sip_port), "--control", str(control), "--proxy",
                                         f"sip:127.0.0.1:{self.front_port}", "--rtp-port", str(self.rtp_port)],
                                        stdout=log, stderr=log)  # fmt: skip
        for _ in range(100):
            if control.exists():
                break
            time.sleep(0.1)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(control))
        self.sock.settimeout(0.2)
        self.send(cmd="auto_answer", on=auto_answer)
        self.send(cmd="register", uri=f"sip:{self.user}@127.0.0.1:{self.front_port}",
                  registrar=f"sip:127.0.0.1:{self.front_port}", user=self.login or self.user,
                  password=self.password)  # fmt: skip
        self.registered = self.wait_for("registered", 10)
        return self

    @property
    def rtp_port(self) -> int:
        return PHONE_RTP + (self.sip_port % 1000) * 8

    def send(self, **command: Any) -> None:
        assert self.sock is not None
        self.sock.sendall(json.dumps(command).encode() + b"\n")

    def poll(self) -> None:
        assert self.sock is not None
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self.events += [json.loads(line) for line in lines if line.strip()]

    def wait_for(self, kind: str, timeout_s: float, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("event") == kind and all(event.get(k) == v for k, v in match.items()):
                    return event
            self.poll()
        raise AssertionError(f"{self.user}: no {kind} {match} in {timeout_s} s; saw {self.events[-10:]}")

    def heard(self, leg: str, seconds: float, path: Path) -> Path:
        """Records what this phone hears on `leg` for `seconds`."""
        self.send(cmd="record", name=path.stem, file=str(path), legs=[leg])
        time.sleep(seconds)
        self.send(cmd="stop_record", name=path.stem)
        self.wait_for("recorded", 5, name=path.stem)
        return path

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.sock is not None:
            self.sock.close()


def tone(directory: Path, hertz: int) -> Path:
    """A WAV of a steady sine at `hertz` (8 kHz, 60 s) for a test phone to play into its call."""
    path = directory / f"tone-{hertz}.wav"
    if not path.exists():
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "60", "sine",
                        str(hertz), "vol", "0.3"], check=True)  # fmt: skip
    return path


def tone_level(path: Path, hertz: int) -> float:
    """The amplitude of the `hertz` sine in a 16-bit WAV (Goertzel over the whole file): about 10,000
    for a tone from `tone()` heard clearly, below a few hundred for one not heard at all."""
    with wave.open(str(path)) as recording:
        rate = recording.getframerate()
        samples = memoryview(recording.readframes(recording.getnframes())).cast("h")
    if not len(samples):
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * hertz / rate)
    before = earlier = 0.0
    for sample in samples:
        before, earlier = sample + coefficient * before - earlier, before
    power = before * before + earlier * earlier - coefficient * before * earlier
    return float(2 * math.sqrt(max(power, 0.0)) / len(samples))


def loudness(path: Path, start_s: float = 0.0, end_s: float | None = None) -> float:
    """The RMS level of a 16-bit WAV between two moments (0 is silence, about 1000+ is speech)."""
    with wave.open(str(path)) as recording:
        rate = recording.getframerate()
        recording.setpos(min(int(start_s * rate), recording.getnframes()))
        frames = recording.getnframes() - recording.tell() if end_s is None else int((end_s - start_s) * rate)
        data = recording.readframes(max(frames, 0))
    if not data:
        return 0.0
    samples = memoryview(data).cast("h")
    return float((sum(s * s for s in samples) / len(samples)) ** 0.5)


def tools_missing() -> list[str]:
    return [
        tool
        for tool in ("sipp", "kamailio", "espeak-ng", "sox")
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()
    ]
