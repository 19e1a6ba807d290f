"""Email over SMTP (stdlib smtplib in a thread): STARTTLS and login when configured, UTF-8 subject
and body. Replies 5xx are permanent (a refused recipient), everything else is retried."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid

from patientline.channels.gateways import OutboundEmail, PermanentFailure, TemporaryFailure
from patientline.core.config import Settings


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str
    password: str
    sender: str
    starttls: bool
    timeout: float


class SmtpGateway:
    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpGateway:
        return cls(
            SmtpConfig(
                host=settings.email_smtp_host,
                port=settings.email_smtp_port,
                user=settings.email_smtp_user,
                password=settings.email_smtp_password.get_secret_value(),
                sender=settings.email_from,
                starttls=settings.email_smtp_starttls,
                timeout=settings.email_smtp_timeout_seconds,
            )
        )

    def compose(self, message: OutboundEmail) -> MimeMessage:
        mime = MimeMessage()
        mime["From"] = self.config.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=False)
        mime["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2] or None)
        mime.set_content(message.body)  # UTF-8, quoted-printable or base64 as needed
        return mime

    async def send(self, message: OutboundEmail) -> str:
        mime = self.compose(message)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, mime), self.config.timeout * 4)
        except TimeoutError as exc:
            raise TemporaryFailure("the mail server took too long") from exc
        return str(mime["Message-ID"])

    def _send(self, mime: MimeMessage) -> None:
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout) as smtp:
                if self.config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.config.user:
                    smtp.login(self.config.user, self.config.password)
                smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(
                    f"the mail server refused the recipient ({codes[0]})", code=str(codes[0])
                ) from exc
            raise TemporaryFailure(f"the mail server deferred the recipient ({codes[0]})") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(f"the mail server refused the login ({exc.smtp_code})") from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPSenderRefused):
                raise PermanentFailure(
                    f"the mail server refused the message ({exc.smtp_code})", code=str(exc.smtp_code)
                ) from exc
            raise TemporaryFailure(f"the mail server answered {exc.smtp_code}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"mail server not reachable: {type(exc).__name__}") from exc
