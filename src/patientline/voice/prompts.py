"""What callers hear, as files the media workers play: text spoken by espeak-ng (Mandarin voice `cmn`)
and converted by sox to 8 kHz mono 16-bit WAV, the telephone's rate. Each text is synthesised once
and kept under `var/voice/prompts/` by the hash of its voice and text; the first caller to need a
prompt waits for it (about a tenth of a second), everyone after plays the file. Recorded prompts,
uploaded WAVs, are in `recorded.py`."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

from patientline.core.errors import DomainError
from patientline.core.i18n import N_

VOICE = "cmn"
SYNTHESIS_TIMEOUT_S = 20.0
TOOLS = ("espeak-ng", "sox")


class PromptFailed(DomainError):
    status_code = 503
    error_id = "prompt_failed"

    def __init__(self, detail: str) -> None:
        super().__init__(N_("The prompt could not be made: {detail}"), params={"detail": detail})


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class Prompts:
    def __init__(self, directory: Path, *, voice: str = VOICE) -> None:
        self.directory = directory
        self.voice = voice
        self._making: dict[Path, asyncio.Future[Path]] = {}

    def path_for(self, text: str) -> Path:
        digest = hashlib.sha256(f"{self.voice}\n{text}".encode()).hexdigest()[:24]
        return self.directory / f"tts-{digest}.wav"

    async def spoken(self, text: str) -> Path:
        """The WAV file of `text`, synthesised now if it is not yet on disk (once, however many ask)."""
        path = self.path_for(text)
        if path.exists():
            return path
        if path in self._making:
            return await asyncio.shield(self._making[path])
        making = asyncio.get_running_loop().create_future()
        self._making[path] = making
        try:
            await self._synthesise(text, path)
            making.set_result(path)
        except BaseException as exc:
            making.set_exception(exc)
            making.exception()  # retrieved: the waiters, if any, get it too
            raise
        finally:
            del self._making[path]
        return path

    async def _synthesise(self, text: str, path: Path) -> None:
        if missing := missing_tools():
            raise PromptFailed(f"missing {', '.join(missing)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        raw, partial = path.with_suffix(".raw.wav"), path.with_suffix(".part.wav")
        try:
            for command in (("espeak-ng", "-v", self.voice, "-w", str(raw), "--", text), to_telephone(raw, partial)):
                if (complaint := await run_tool(*command)) is not None:
                    raise PromptFailed(f"{command[0]}: {complaint}")
            partial.replace(path)
        finally:
            raw.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)


def to_telephone(source: Path, target: Path) -> tuple[str, ...]:
    """The sox command that makes any WAV the telephone's: 8 kHz, mono (channels mixed), 16-bit."""
    return ("sox", "-V1", str(source), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(target))


async def run_tool(*command: str) -> str | None:
    """Runs `command`: None when it succeeded, else the end of what it said (PromptFailed if it hangs)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, errors = await asyncio.wait_for(process.communicate(), SYNTHESIS_TIMEOUT_S)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise PromptFailed(f"{command[0]} timed out") from exc
    if process.returncode == 0:
        return None
    return errors.decode(errors="replace").strip()[-200:] or f"exit status {process.returncode}"
