"""Contacts: one record per interaction on any channel, disposition codes, the shift handover log."""
