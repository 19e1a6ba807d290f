"""Roles and what each may do. A permission is a plain string so API-token scopes use the same names."""

from __future__ import annotations

from enum import StrEnum

from patientline.core.i18n import N_


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    HANDLER = "handler"  # department handler: receives dispatched work
    QA = "qa"
    WORKFORCE = "workforce"
    LEADERSHIP = "leadership"  # hospital leadership: reports and level-3 escalations


ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.SUPERVISOR: N_("Supervisor"),
    Role.AGENT: N_("Agent"),
    Role.HANDLER: N_("Department handler"),
    Role.QA: N_("Quality"),
    Role.WORKFORCE: N_("Workforce"),
    Role.LEADERSHIP: N_("Hospital leadership"),
}


class Permission(StrEnum):
    MANAGE_USERS = "users:manage"
    MANAGE_TOKENS = "tokens:manage"
    READ_AUDIT = "audit:read"
    READ_DIRECTORY = "directory:read"
    WRITE_DIRECTORY = "directory:write"
    MANAGE_CALENDAR = "calendar:manage"
    MANAGE_JOBS = "jobs:manage"
    RECEIVE_NOTIFICATIONS = "notifications:receive"
    SUPERVISE = "centre:supervise"
    HANDLE_CONTACTS = "contacts:handle"
    HANDLE_DEPARTMENT_WORK = "department:handle"
    REVIEW_QUALITY = "quality:review"
    PLAN_WORKFORCE = "workforce:plan"
    READ_KNOWLEDGE = "knowledge:read"
    EDIT_KNOWLEDGE = "knowledge:edit"  # department editors: items their departments own
    REVIEW_KNOWLEDGE = "knowledge:review"  # publish, archive, synonyms
    EDIT_TIMETABLES = "timetables:edit"  # department editors: their departments' doctors
    MANAGE_QUIZZES = "quizzes:manage"
    CREATE_WORK_ORDERS = "workorders:create"  # agents: register, dispatch, call back
    CONFIGURE_WORK_ORDERS = "workorders:configure"  # types, forms, policies, department contacts
    READ_WORK_ORDER_REPORTS = "workorders:reports"
    LEADERSHIP_ESCALATIONS = "workorders:leadership"  # receives level-3 escalations
    MANAGE_MESSAGING = "messaging:manage"  # SMS templates, opt-outs, outbox
    CONFIGURE_ROUTING = "routing:configure"  # queues, members, agents' routing profiles
    READ_PATIENTS = "patients:read"  # search the index, open a patient card (every read audited)
    WRITE_PATIENTS = "patients:write"  # register, verify, edit contact preferences, flag a caller
    MANAGE_PATIENTS = "patients:manage"  # merge, VIP profiles, clear flags, export one patient's data
    CONFIGURE_CONTACTS = "contacts:configure"  # disposition codes, retention
    CONFIGURE_VOICE = "voice:configure"  # IVR flows


_EVERYONE = {Permission.READ_DIRECTORY, Permission.RECEIVE_NOTIFICATIONS, Permission.READ_KNOWLEDGE}
_KNOWLEDGE_EDITOR = {Permission.EDIT_KNOWLEDGE, Permission.EDIT_TIMETABLES}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: frozenset(
        _EVERYONE
        | _KNOWLEDGE_EDITOR
        | {
            Permission.SUPERVISE,
            Permission.HANDLE_CONTACTS,
            Permission.READ_AUDIT,
            Permission.MANAGE_CALENDAR,
            Permission.REVIEW_KNOWLEDGE,
            Permission.MANAGE_QUIZZES,
            Permission.CREATE_WORK_ORDERS,
            Permission.READ_WORK_ORDER_REPORTS,
            Permission.MANAGE_MESSAGING,
            Permission.PLAN_WORKFORCE,
            Permission.READ_PATIENTS,
            Permission.WRITE_PATIENTS,
            Permission.MANAGE_PATIENTS,
            Permission.CONFIGURE_VOICE,
        }
    ),
    Role.AGENT: frozenset(
        _EVERYONE
        | {
            Permission.HANDLE_CONTACTS,
            Permission.CREATE_WORK_ORDERS,
            Permission.READ_PATIENTS,
            Permission.WRITE_PATIENTS,
        }
    ),
    Role.HANDLER: frozenset(_EVERYONE | _KNOWLEDGE_EDITOR | {Permission.HANDLE_DEPARTMENT_WORK}),
    Role.QA: frozenset(_EVERYONE | {Permission.REVIEW_QUALITY}),
    Role.WORKFORCE: frozenset(_EVERYONE | {Permission.PLAN_WORKFORCE}),
    Role.LEADERSHIP: frozenset(_EVERYONE | {Permission.READ_WORK_ORDER_REPORTS, Permission.LEADERSHIP_ESCALATIONS}),
}


def permissions_for(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())  # type: ignore[call-overload]
    return frozenset(granted)
