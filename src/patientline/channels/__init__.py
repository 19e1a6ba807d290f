"""Outbound channels: SMS (templates, opt-outs, the outbox; sink, SMPP and cloud-API adapters) and
email (sink and SMTP). Other domains call `channels.sms.send` and `channels.email.send`."""
