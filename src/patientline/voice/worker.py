"""A media worker: one process, one SIP user agent (pjsua2), one conversation at a time.

The pjsua2 wheel holds at most four calls per process, so each conversation (caller, agent, a
supervisor and a spare) has a process of its own. The controller (`voice.controller`) drives the
worker over a local socket, one JSON object per line each way: commands in (`answer`, `play`,
`connect`, `record`, `dial`, …), events out (`incoming`, `media`, `dtmf`, `played`, `ended`, …).

pjsua2 is called from one thread only (threadCnt=0, mainThreadOnly): the loop handles SIP and media
events for a few milliseconds, then runs the commands a reader thread has queued. Python keeps a
reference to every call, player and recorder until pjsua2 is done with it.

Run: `python -m patientline.voice.worker --sip-port 5091 --control var/voice/run/worker-5091.sock`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pjsua2 as pj

from patientline.voice.ports import RTP_PORTS, SELF_TEST_HEADER

log = logging.getLogger("patientline.voice.worker")

LOOP_MS = 10
IDLE_LOOP_MS = 100  # with no call, SIP still wakes the loop at once; only commands wait this long
CODECS = ("PCMA/8000", "PCMU/8000")  # G.711 only: anything else is answered 488
MAX_LINE = 64 * 1024
MAX_PRESENTED = 5  # caller IDs shown on dialled calls (pjsua2 holds 8 accounts)
FINISH_TRIES = 50  # loops of LOOP_MS waiting for a closed recording's header
Event = dict[str, Any]


class Leg(pj.Call):  # type: ignore[misc]
    """One call of the conversation; its events go to the worker, which names it."""

    def __init__(self, worker: Worker, account: pj.Account, name: str, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.worker = worker
        self.name = name
        self.player: Player | None = None
        self.media_ready = False

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_EARLY:
            self.worker.emit({"event": "ringing", "leg": self.name, "code": info.lastStatusCode})
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.worker.emit({"event": "answered", "leg": self.name})
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.worker.ended(self, info.lastStatusCode, info.lastReason)

    def onCallMediaState(self, prm: Any) -> None:
        if not self.media_ready and self.audio() is not None:
            self.media_ready = True
            self.worker.emit({"event": "media", "leg": self.name})

    def onDtmfDigit(self, prm: Any) -> None:
        self.worker.emit({"event": "dtmf", "leg": self.name, "digit": prm.digit})

    def audio(self) -> pj.AudioMedia | None:
        info = self.getInfo()  # held: its media list lives only as long as it does
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                return self.getAudioMedia(index)
        return None


class Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """Prompts played into one leg; at the end of the last (unless looping) the worker says `played`."""

    def __init__(self, worker: Worker, leg: str) -> None:
        super().__init__()
        self.worker = worker
        self.leg = leg
        self.done = False

    def onEof2(self) -> None:
        if not self.done:
            self.done = True
            self.worker.emit({"event": "played", "leg": self.leg})


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:
        self.worker.incoming(self, prm.callId, prm.rdata.wholeMsg)

    def onRegState(self, prm: Any) -> None:
        self.worker.emit({"event": "registered", "code": prm.code, "reason": prm.reason})


class CommandError(Exception):
    pass


@dataclass
class Worker:
    sip_port: int
    proxy: str | None = None  # where outgoing calls go (the SIP front)
    rtp_port: int = 0  # the first of the media ports (0: pjsua2's default, 4000 on)
    endpoint: pj.Endpoint = field(default_factory=pj.Endpoint)
    legs: dict[str, Leg] = field(default_factory=dict)
    recorders: dict[str, tuple[pj.AudioMediaRecorder, str]] = field(default_factory=dict)
    accounts: list[Account] = field(default_factory=list)
    presented: dict[str, Account] = field(default_factory=dict)  # by the From an outbound call shows
    commands: queue.Queue[Event] = field(default_factory=queue.Queue)
    auto_answer: bool = False
    _out: socket.socket | None = None
    _dead: list[Any] = field(default_factory=list)
    _counter: int = 0
    stopping: bool = False

    # ---- the engine ---------------------------------------------------------------------------------

    def start(self) -> None:
        ep = self.endpoint
        ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = 4
        config.logConfig.level = 1
        config.logConfig.consoleLevel = 1
        config.medConfig.clockRate = 8000
        config.medConfig.sndClockRate = 8000
        config.medConfig.ecTailLen = 0
        ep.libInit(config)
        transport = pj.TransportConfig()
        transport.port = self.sip_port
        transport.boundAddress = "127.0.0.1"
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._only_g711()
        self.accounts.append(self._account(f"sip:worker@127.0.0.1:{self.sip_port}"))

    def _only_g711(self) -> None:
        for codec in self.endpoint.codecEnum2():
            self.endpoint.codecSetPriority(codec.codecId, 0)
        for priority, codec_id in enumerate(CODECS):
            self.endpoint.codecSetPriority(codec_id, 255 - priority)

    def _account(self, uri: str, registrar: str | None = None, user: str = "", password: str = "") -> Account:
        config = pj.AccountConfig()
        config.idUri = uri
        if self.proxy:
            config.sipConfig.proxies.append(f"{self.proxy};lr")
        if self.rtp_port:
            config.mediaConfig.transportConfig.port = self.rtp_port
            config.mediaConfig.transportConfig.portRange = RTP_PORTS
        if registrar:
            config.regConfig.registrarUri = registrar
        if password:
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        account = Account(self)
        account.create(config, True)
        return account

    def run(self) -> None:
        while not self.stopping:
            self.endpoint.libHandleEvents(LOOP_MS if self.legs or self.recorders else IDLE_LOOP_MS)
            self._dead.clear()
            self._run_commands()
        self.shutdown()

    def shutdown(self) -> None:
        for name in list(self.recorders):
            self._close_recorder(name)
        for leg in list(self.legs.values()):
            _quietly(partial(leg.hangup, pj.CallOpParam()))
        for account in self.accounts:
            _quietly(account.shutdown)
        self.endpoint.libHandleEvents(200)
        self.legs.clear()
        self._dead.clear()
        self.accounts.clear()
        self.presented.clear()
        self.endpoint.libDestroy()

    # ---- events out ---------------------------------------------------------------------------------

    def attach(self, connection: socket.socket | None) -> None:
        self._out = connection

    def emit(self, event: Event) -> None:
        if self._out is None:
            return
        try:
            self._out.sendall(json.dumps(event, ensure_ascii=False).encode() + b"\n")
        except OSError:
            self._out = None

    def incoming(self, account: Account, call_id: int, message: str) -> None:
        self._counter += 1
        leg = Leg(self, account, f"in{self._counter}", call_id)
        self.legs[leg.name] = leg
        info = leg.getInfo()
        self.emit({"event": "incoming", "leg": leg.name, "from": info.remoteUri, "to": info.localUri,
                   "call_id": info.callIdString, "dialled": _dialled(message),
                   "self_test": _header(message, SELF_TEST_HEADER)})  # fmt: skip
        if self.auto_answer:
            self._answer(leg, 200)
        else:
            self._answer(leg, 180)

    def ended(self, leg: Leg, code: int, reason: str) -> None:
        self.legs.pop(leg.name, None)
        self._dead.append(leg)  # freed after the callback returns
        if leg.player is not None:
            self._dead.append(leg.player)
        self.emit({"event": "ended", "leg": leg.name, "code": code, "reason": reason})

    # ---- commands in --------------------------------------------------------------------------------

    def _run_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            self.execute(command)

    def execute(self, command: Event) -> None:
        name = str(command.get("cmd", ""))
        handler = COMMANDS.get(name)
        try:
            if handler is None:
                raise CommandError(f"unknown command {name!r}")
            handler(self, command)
        except (CommandError, KeyError, TypeError, ValueError, pj.Error) as exc:
            self.emit({"event": "error", "cmd": name, "leg": command.get("leg"), "message": _message(exc)})

    def leg(self, command: Event, key: str = "leg") -> Leg:
        leg = self.legs.get(str(command[key]))
        if leg is None:
            raise CommandError(f"no leg {command[key]!r}")
        return leg

    def media(self, command: Event, key: str = "leg") -> pj.AudioMedia:
        audio = self.leg(command, key).audio()
        if audio is None:
            raise CommandError(f"leg {command[key]!r} has no audio yet")
        return audio

    def _answer(self, leg: Leg, code: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        leg.answer(op)

    def cmd_answer(self, command: Event) -> None:
        self._answer(self.leg(command), int(command.get("code", 200)))

    def cmd_hangup(self, command: Event) -> None:
        op = pj.CallOpParam()
        op.statusCode = int(command.get("code", 0))
        self.leg(command).hangup(op)

    def cmd_dial(self, command: Event) -> None:
        name = str(command["leg"])
        if name in self.legs:
            raise CommandError(f"leg {name!r} exists")
        leg = Leg(self, self._presenting(command.get("from")), name)
        op = pj.CallOpParam(True)
        for header_name, value in dict(command.get("headers") or {}).items():
            header = pj.SipHeader()
            header.hName, header.hValue = str(header_name), str(value)
            op.txOption.headers.append(header)
        self.legs[name] = leg
        try:
            leg.makeCall(str(command["uri"]), op)
        except pj.Error:
            del self.legs[name]
            raise

    def _presenting(self, sender: object) -> Account:
        """The account whose From a dialled call shows: the worker's own, or one made for `sender` (a
        caller ID the controller chose) and kept for the next call."""
        if not sender:
            return self.accounts[0]
        uri = str(sender)
        if uri not in self.presented:
            if len(self.presented) >= MAX_PRESENTED:
                raise CommandError("too many caller IDs")
            self.presented[uri] = self._account(uri)
            self.accounts.append(self.presented[uri])
        return self.presented[uri]

    def cmd_play(self, command: Event) -> None:
        leg = self.leg(command)
        audio = self.media(command)
        files = [str(Path(f)) for f in command["files"]]
        if not files:
            raise CommandError("nothing to play")
        self._stop_player(leg)
        player = Player(self, leg.name)
        options = 0 if command.get("loop") else pj.PJMEDIA_FILE_NO_LOOP
        if len(files) == 1:
            player.createPlayer(files[0], options)
        else:
            player.createPlaylist(pj.StringVector(files), "prompts", options)
        player.startTransmit(audio)
        leg.player = player

    def cmd_stop(self, command: Event) -> None:
        self._stop_player(self.leg(command))

    def _stop_player(self, leg: Leg) -> None:
        if leg.player is not None:
            leg.player.done = True
            _quietly(lambda: leg.player.stopTransmit(leg.audio()) if leg.audio() else None)  # type: ignore[union-attr]
            self._dead.append(leg.player)
            leg.player = None

    def cmd_connect(self, command: Event) -> None:
        self.media(command, "from").startTransmit(self.media(command, "to"))

    def cmd_disconnect(self, command: Event) -> None:
        source = self.leg(command, "from").audio()
        target = self.leg(command, "to").audio()
        if source is not None and target is not None:
            source.stopTransmit(target)

    def cmd_record(self, command: Event) -> None:
        name = str(command["name"])
        if name in self.recorders:
            raise CommandError(f"recording {name!r} is on")
        path = Path(str(command["file"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        self.recorders[name] = (recorder, str(path))
        self.cmd_hear(command)

    def cmd_hear(self, command: Event) -> None:
        """A recording hears one more leg (the agent who joins, a transfer's second agent)."""
        for audio, recorder in self._recorded_legs(command):
            audio.startTransmit(recorder)

    def cmd_unhear(self, command: Event) -> None:
        """A recording stops hearing a leg (a supervisor who barged in and went back to listening)."""
        for audio, recorder in self._recorded_legs(command):
            audio.stopTransmit(recorder)

    def _recorded_legs(self, command: Event) -> list[tuple[pj.AudioMedia, pj.AudioMediaRecorder]]:
        recorder, _ = self.recorders[str(command["name"])]
        legs = (self.legs.get(name) for name in command.get("legs", []))
        return [(audio, recorder) for leg in legs if leg is not None and (audio := leg.audio()) is not None]

    def cmd_stop_record(self, command: Event) -> None:
        name = str(command["name"])
        path = self._close_recorder(name)
        self.emit({"event": "recorded", "name": name, "file": path})

    def _close_recorder(self, name: str) -> str:
        """Destroys the recorder and lets the engine run until the WAV header holds the length (the
        conference bridge lets go of the port asynchronously; the file is finished only then)."""
        recorder, path = self.recorders.pop(name)
        del recorder
        for _ in range(FINISH_TRIES):
            self.endpoint.libHandleEvents(LOOP_MS)
            if _wav_finished(path):
                break
        return path

    def cmd_send_dtmf(self, command: Event) -> None:
        self.leg(command).dialDtmf(str(command["digits"]))

    def cmd_register(self, command: Event) -> None:
        uri, registrar = str(command["uri"]), str(command["registrar"])
        self.accounts.append(self._account(uri, registrar, str(command.get("user", "")),
                                           str(command.get("password", ""))))  # fmt: skip

    def cmd_auto_answer(self, command: Event) -> None:
        self.auto_answer = bool(command.get("on", True))

    def cmd_status(self, command: Event) -> None:
        self.emit({"event": "status", "legs": sorted(self.legs), "recordings": sorted(self.recorders),
                   "pid": os.getpid(), "sip_port": self.sip_port})  # fmt: skip

    def cmd_quit(self, command: Event) -> None:
        self.stopping = True


COMMANDS: dict[str, Callable[[Worker, Event], None]] = {
    name.removeprefix("cmd_"): getattr(Worker, name) for name in dir(Worker) if name.startswith("cmd_")
}


def _wav_finished(path: str) -> bool:
    """Whether the header's data length is written (it stays 0 until the writer closes)."""
    try:
        with open(path, "rb") as wav:
            header = wav.read(44)
    except OSError:
        return True
    return len(header) < 44 or int.from_bytes(header[40:44], "little") > 0


def _dialled(message: str) -> str:
    """The user part of the request URI: the number the caller dialled."""
    first = message.split("\r\n", 1)[0]
    parts = first.split(" ")
    if len(parts) < 2 or not parts[1].startswith("sip:"):
        return ""
    return parts[1][4:].split("@", 1)[0].split(";", 1)[0]


def _header(message: str, name: str) -> str:
    """The value of the header `name` in a SIP message ('' when it has none)."""
    head = message.split("\r\n\r\n", 1)[0]
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()[:100]
    return ""


def _message(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        return f"{exc.title}: {exc.reason}"
    return str(exc)


def _quietly(action: Callable[[], Any]) -> None:
    with contextlib.suppress(pj.Error):
        action()


# ---- the control socket -------------------------------------------------------------------------------


def serve_control(worker: Worker, path: Path) -> threading.Thread:
    """Accepts the controller (one at a time; a new connection replaces the old) and queues its lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def accept_forever() -> None:
        while not worker.stopping:
            connection, _ = server.accept()
            worker.attach(connection)
            worker.commands.put({"cmd": "status"})
            _read_lines(worker, connection)

    thread = threading.Thread(target=accept_forever, name="control", daemon=True)
    thread.start()
    return thread


def _read_lines(worker: Worker, connection: socket.socket) -> None:
    with connection, connection.makefile("rb") as lines:
        for raw in lines:
            if len(raw) > MAX_LINE:
                continue
            try:
                command = json.loads(raw)
            except ValueError:
                command = {"cmd": "", "bad": True}
            worker.commands.put(command if isinstance(command, dict) else {"cmd": ""})


def serve(sip_port: int, control: Path, proxy: str | None, rtp_port: int = 0) -> None:
    """Runs one worker until SIGTERM: its engine, then its control socket, then the loop."""
    worker = Worker(sip_port, proxy, rtp_port=rtp_port)

    def stop(*_: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.start()
    serve_control(worker, control)
    worker.run()
    control.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PatientLine media worker")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--proxy", help="the SIP front, e.g. sip:127.0.0.1:5080")
    parser.add_argument("--rtp-port", type=int, default=0, help=f"the first of {RTP_PORTS} media ports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    serve(args.sip_port, args.control, args.proxy, args.rtp_port)


if __name__ == "__main__":
    main()
