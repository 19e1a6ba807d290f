"""Desk-phone passwords: who may register a phone at the SIP front, and as whom.

A phone registers as its agent's username with a password of its own (not the login password: it is
typed into a phone's keypad and stored in the phone). PatientLine keeps only its SIP digest, HA1 =
MD5(username:realm:password), which is what Kamailio needs to check a REGISTER; the `Registrar`
loop keeps Kamailio's table of digests (`htable` phones) equal to the active accounts' ones, over
Kamailio's JSON-RPC socket. Setting, resetting and revoking a password are audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import NotFound
from patientline.voice.models import VoicePhoneSecret
from patientline.voice.plant import MediaPlant, RpcError, front, jsonrpc_socket, rpc
from patientline.voice.schemas import PhoneSetupRead

log = logging.getLogger(__name__)

SYNC_S = 3.0
WATCH_S = 0.2  # how soon a Kamailio started again is told every digest
PASSWORD_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # noqa: S105 - no 0/o, 1/l/i: read off a screen into a phone
PASSWORD_LENGTH = 12


def digest(username: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


async def setup(session: AsyncSession, settings: Settings, user_id: int) -> PhoneSetupRead:
    user = await _user(session, user_id)
    secret = await session.get(VoicePhoneSecret, user_id)
    valid = secret is not None and secret.realm == settings.voice_sip_realm
    return PhoneSetupRead(user_id=user.id, username=user.username, registrar=f"sip:{front(settings)}",
                          realm=settings.voice_sip_realm, has_password=valid,
                          updated_at=secret.updated_at if valid and secret else None)  # fmt: skip


async def set_password(
    session: AsyncSession, settings: Settings, actor: Actor, user_id: int, password: str | None = None
) -> PhoneSetupRead:
    """A fresh password for the user's phone (the one before stops working within seconds)."""
    require_own_or_admin(actor, user_id)
    user = await _user(session, user_id)
    password = password or new_password()
    secret = await session.get(VoicePhoneSecret, user_id) or VoicePhoneSecret(user_id=user_id)
    secret.ha1 = digest(user.username, settings.voice_sip_realm, password)
    secret.realm = settings.voice_sip_realm
    secret.updated_at = clock.now()
    secret.updated_by_id = actor.user_id
    session.add(secret)
    audit.record(session, actor=actor, action="voice.phone_password.set", target_type="user", target_id=user_id)
    await session.flush()
    return (await setup(session, settings, user_id)).model_copy(update={"password": password})


async def revoke(session: AsyncSession, actor: Actor, user_id: int) -> None:
    require_own_or_admin(actor, user_id)
    await _user(session, user_id)
    secret = await session.get(VoicePhoneSecret, user_id)
    if secret is not None:
        await session.delete(secret)
        audit.record(session, actor=actor, action="voice.phone_password.revoke", target_type="user", target_id=user_id)


async def digests(session: AsyncSession, realm: str) -> dict[str, str]:
    """Every active account's phone digest, by username: what the registrar should know."""
    rows = await session.execute(
        select(User.username, VoicePhoneSecret.ha1)
        .join(VoicePhoneSecret, VoicePhoneSecret.user_id == User.id)
        .where(User.is_active.is_(True), VoicePhoneSecret.realm == realm)
    )
    return {username: ha1 for username, ha1 in rows.tuples()}


def require_own_or_admin(actor: Actor, user_id: int) -> None:
    """A person manages their own phone; an administrator anyone's."""
    if actor.user_id != user_id:
        actor.require(Permission.MANAGE_USERS)


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


# ---- Kamailio's table of digests ---------------------------------------------------------------------------


@dataclass
class Registrar:
    """Keeps Kamailio's `phones` table equal to the accounts' digests: in full as soon as Kamailio
    (re)starts, then only the changes, every few seconds."""

    media: MediaPlant
    db: Database
    settings: Settings
    known: dict[str, str] = field(default_factory=dict)  # what this Kamailio was told
    kamailio_pid: int | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voice-registrar")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sync(self) -> bool:
        """Tells Kamailio what changed (everything, when it is a new Kamailio); False when it could not be
        reached, to be tried again."""
        process = self.media.processes.get("kamailio")
        if process is None or process.returncode is not None:
            return False
        known = self.known if process.pid == self.kamailio_pid else {}
        async with self.db.sessions() as session:
            wanted = await digests(session, self.settings.voice_sip_realm)
        requests: list[tuple[str, ...]] = [("htable.delete", "phones", name) for name in known.keys() - wanted.keys()]
        requests += [("htable.sets", "phones", name, ha1) for name, ha1 in wanted.items() if known.get(name) != ha1]
        if requests:
            try:
                await asyncio.to_thread(rpc, jsonrpc_socket(self.settings), requests)
            except RpcError as error:
                log.info("the registrar's phones could not be updated yet: %s", error)
                return False
        self.known, self.kamailio_pid = wanted, process.pid
        return True

    def _restarted(self) -> bool:
        process = self.media.processes.get("kamailio")
        return process is not None and process.pid != self.kamailio_pid

    async def ready(self, within: float) -> bool:
        """Whether Kamailio has every phone's digest within `within` seconds (it may still be starting)."""
        deadline = asyncio.get_running_loop().time() + within
        while not await self.sync():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def _run(self) -> None:
        """Every few seconds, and at once when Kamailio was started again (its table is empty then)."""
        loop = asyncio.get_running_loop()
        synced = loop.time()
        while True:
            await asyncio.sleep(WATCH_S)
            if (self._restarted() or loop.time() - synced >= SYNC_S) and await self.sync():
                synced = loop.time()
