"""Accounts, roles and permissions, and the audit trail (issue 15): who may do what, and who did."""

from __future__ import annotations

from .accounts import (
    Account,
    Session,
    add_user,
    authenticate,
    check_session,
    disable_user,
    enable_user,
    get_user,
    list_users,
    permissions_of,
    reset_password,
    set_role,
    sign_in,
)
from .audit import AuditRow, audit_rows, record
from .identity import acting_as, current_user, fold_name
from .roles import (
    PERMISSIONS,
    ROLES,
    Permission,
    account_role,
    allows,
    four_eyes_refusal,
    open_mode,
    permissions_of_role,
    require,
    role_rank,
)

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "Account",
    "AuditRow",
    "Permission",
    "Session",
    "account_role",
    "acting_as",
    "add_user",
    "allows",
    "audit_rows",
    "authenticate",
    "check_session",
    "current_user",
    "disable_user",
    "enable_user",
    "fold_name",
    "four_eyes_refusal",
    "get_user",
    "list_users",
    "open_mode",
    "permissions_of",
    "permissions_of_role",
    "record",
    "require",
    "reset_password",
    "role_rank",
    "set_role",
    "sign_in",
]
