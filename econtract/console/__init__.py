"""The console's people: accounts (supervisors and department admins), their passwords and
one-time codes, sign-in and sessions. The console's pages are in ``routes.console``.

People are kept apart from the API's clients: a person signs in with a password (and a
one-time code) and holds a session cookie; a machine holds client credentials and bearer
tokens (:mod:`econtract.auth`). Neither opens the other's door.
"""

from econtract.console._accounts import (
    MAX_NAME_LENGTH,
    ConsoleUserExistsError,
    NewAccount,
    SignedIn,
    SignIn,
    SignInPolicy,
    SignInRefusedError,
    TOTPEnrolment,
    add_user,
    disable_user,
    list_users,
    sign_in,
    sign_out,
)
from econtract.console._models import ConsoleRole, ConsoleSession, ConsoleUser
from econtract.console._passwords import MIN_PASSWORD_LENGTH, WeakPasswordError
from econtract.console._sessions import (
    SessionPolicy,
    SignedInUser,
    live_session,
    new_sign_in_nonce,
    session_id_of,
    sign_in_form_token,
    sign_in_token_matches,
    tokens_match,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ConsoleRole",
    "ConsoleSession",
    "ConsoleUser",
    "ConsoleUserExistsError",
    "NewAccount",
    "SessionPolicy",
    "SignIn",
    "SignInPolicy",
    "SignInRefusedError",
    "SignedIn",
    "SignedInUser",
    "TOTPEnrolment",
    "WeakPasswordError",
    "add_user",
    "disable_user",
    "list_users",
    "live_session",
    "new_sign_in_nonce",
    "session_id_of",
    "sign_in",
    "sign_in_form_token",
    "sign_in_token_matches",
    "sign_out",
    "tokens_match",
]
