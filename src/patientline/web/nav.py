"""The navigation, by permission: each person sees what their role lets them use."""

from __future__ import annotations

from dataclasses import dataclass

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    permission: str | None
    section: str
    hotkey: str | None = None
    active: bool = False


NAV: list[NavItem] = [
    NavItem("Home", "/", None, "Work", "g h"),
    NavItem("Workbench", "/workbench", Permission.READ_PATIENTS, "Work", "g i"),
    NavItem("Chat desk", "/chat/desk", Permission.HANDLE_CONTACTS, "Work", "g m"),
    NavItem("Contact records", "/contacts", Permission.HANDLE_CONTACTS, "Work", "g l"),
    NavItem("Shift handover", "/contacts/handover", Permission.HANDLE_CONTACTS, "Work", "g o"),
    NavItem("Call log", "/voice/calls", Permission.HANDLE_CONTACTS, "Work"),
    NavItem("My desk phone", "/voice/phone", Permission.HANDLE_CONTACTS, "Work"),
    NavItem("Work orders", "/workorders", Permission.CREATE_WORK_ORDERS, "Work", "g w"),
    NavItem("New work order", "/workorders/new", Permission.CREATE_WORK_ORDERS, "Work", "g n"),
    NavItem("Callbacks due", "/workorders/callbacks", Permission.CREATE_WORK_ORDERS, "Work", "g c"),
    NavItem("Department queue", "/workorders/department", Permission.HANDLE_DEPARTMENT_WORK, "Work", "g p"),
    NavItem("Supervision list", "/workorders/supervision", Permission.SUPERVISE, "Work", "g v"),
    NavItem("Work-order reports", "/workorders/reports", Permission.READ_WORK_ORDER_REPORTS, "Work", "g r"),
    NavItem("Wallboard", "/routing/wallboard", Permission.SUPERVISE, "Work", "g b"),
    NavItem("Live calls", "/voice/live", Permission.SUPERVISE, "Work"),
    NavItem("Queue report", "/routing/reports", Permission.SUPERVISE, "Work"),
    NavItem("Staffing", "/routing/staffing", Permission.PLAN_WORKFORCE, "Work", "g f"),
    NavItem("Knowledge", "/kb", Permission.READ_KNOWLEDGE, "Knowledge", "g k"),
    NavItem("Knowledge editor", "/kb/edit", Permission.EDIT_KNOWLEDGE, "Knowledge", "g e"),
    NavItem("Review queue", "/kb/edit?status=in_review", Permission.REVIEW_KNOWLEDGE, "Knowledge"),
    NavItem("Candidates", "/kb/candidates", Permission.EDIT_KNOWLEDGE, "Knowledge"),
    NavItem("Synonyms", "/kb/synonyms", Permission.REVIEW_KNOWLEDGE, "Knowledge"),
    NavItem("Quizzes", "/kb/quizzes", Permission.READ_KNOWLEDGE, "Knowledge", "g q"),
    NavItem("Clinic timetable", "/kb/timetable", Permission.READ_KNOWLEDGE, "Knowledge", "g t"),
    NavItem("Departments", "/directory/departments", Permission.READ_DIRECTORY, "Directory", "g d"),
    NavItem("Sites", "/directory/sites", Permission.READ_DIRECTORY, "Directory"),
    NavItem("Teams", "/directory/teams", Permission.READ_DIRECTORY, "Directory"),
    NavItem("Skills", "/directory/skills", Permission.READ_DIRECTORY, "Directory"),
    NavItem("Staff", "/directory/staff", Permission.READ_DIRECTORY, "Directory", "g s"),
    NavItem("Users", "/admin/users", Permission.MANAGE_USERS, "Administration", "g u"),
    NavItem("API tokens", "/admin/tokens", Permission.MANAGE_TOKENS, "Administration"),
    NavItem("Working days", "/admin/calendar", Permission.MANAGE_CALENDAR, "Administration"),
    NavItem("Audit log", "/admin/audit", Permission.READ_AUDIT, "Administration", "g a"),
    NavItem("Jobs", "/admin/jobs", Permission.MANAGE_JOBS, "Administration"),
    NavItem("Work-order types", "/workorders/types", Permission.CONFIGURE_WORK_ORDERS, "Administration"),
    NavItem("Messages", "/messages", Permission.MANAGE_MESSAGING, "Administration"),
    NavItem("Queues", "/routing/queues", Permission.CONFIGURE_ROUTING, "Administration"),
    NavItem("IVR flows", "/voice/flows", Permission.CONFIGURE_VOICE, "Administration"),
    NavItem("Recorded prompts", "/voice/prompts", Permission.CONFIGURE_VOICE, "Administration"),
    NavItem("Dispositions", "/contacts/dispositions", Permission.CONFIGURE_CONTACTS, "Administration"),
    NavItem("Hospital systems", "/admin/his", Permission.MANAGE_PATIENTS, "Administration"),
]


EXACT = frozenset({"/", "/kb", "/workorders", "/contacts"})  # prefixes of other entries


def navigation(actor: Actor, path: str) -> list[NavItem]:
    items = []
    for item in NAV:
        if item.permission is None or actor.can(item.permission):
            active = path == item.href if item.href in EXACT else path.startswith(item.href)
            items.append(NavItem(item.label, item.href, item.permission, item.section, item.hotkey, active))
    return items
