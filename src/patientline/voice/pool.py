"""The media workers' pool: one process that loads pjsua2 once and forks every worker from itself.

A worker started on its own is a fresh interpreter with its own copy of pjsua2 and its endpoint
(about 32 MB each); forked from this process, the workers share those pages copy-on-write and each
adds about 5 MB, which is what lets 64 conversations fit in the memory target. The pool keeps its
workers running: a worker that ends is forked again; a pool that is stopped stops them first, and
one that dies takes them with it (the plant then starts the pool again).

Run: `python -m patientline.voice.pool --seats var/voice/run/workers.json --proxy sip:127.0.0.1:5080`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from setproctitle import setproctitle

from patientline.voice import worker
from patientline.voice.ports import Seat, read_seats

log = logging.getLogger("patientline.voice.pool")

RESTART_DELAY_S = 0.5
PR_SET_PDEATHSIG = 1  # prctl(2)


class Pool:
    def __init__(self, seats: list[Seat], proxy: str | None) -> None:
        self.seats = seats
        self.proxy = proxy
        self.children: dict[int, Seat] = {}
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        gc.freeze()  # the collector would otherwise write to every shared object and unshare its page
        for seat in self.seats:
            self._fork(seat)
        while self.children:
            ended = self._wait_for_ends()
            if self.stopping:
                continue
            for seat in ended:
                log.warning("media worker on SIP port %s ended; forking it again", seat.sip_port)
                self._fork(seat)

    def stop(self, *_: object) -> None:
        self.stopping = True
        for pid in self.children:
            _kill(pid, signal.SIGTERM)

    def _wait_for_ends(self) -> list[Seat]:
        """Blocks until a worker ends; then, after the restart delay, gathers every worker that ended."""
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            self.children.clear()
            return []
        ended = [self.children.pop(pid)] if pid in self.children else []
        if not self.stopping:
            time.sleep(RESTART_DELAY_S)
        while self.children:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in self.children:
                ended.append(self.children.pop(pid))
        return ended

    def _fork(self, seat: Seat) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pool = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = seat
            return
        code = 1
        try:
            _become_worker(seat, pool)
            worker.serve(seat.sip_port, seat.control, self.proxy, seat.rtp_port)
            code = 0
        except BaseException:  # a forked worker must never return into the pool's loop
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _become_worker(seat: Seat, pool: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != pool:  # the pool died before the line above took effect
        os._exit(1)
    log_fd = os.open(seat.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    setproctitle(seat.title)


def _kill(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PatientLine media workers' pool")
    parser.add_argument("--seats", type=Path, required=True, help="a JSON list of the workers' seats")
    parser.add_argument("--proxy", help="the SIP front, e.g. sip:127.0.0.1:5080")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    Pool(read_seats(args.seats), args.proxy).run()


if __name__ == "__main__":
    main()
