"""The console (电子监察) for people: sign-in with a password and, for a supervisor, a one-time
code; sign-out; the signed-in person as a dependency of every console page.

People's sessions are kept apart from the API's bearer tokens: a console page never accepts a
token, and the API never accepts the console's cookie. The cookie (``econtract_console``) is
HttpOnly, SameSite=Strict, limited to ``/console`` and Secure on https; every form posts the
session's CSRF token, the sign-in form a signed token of its own cookie (see
:mod:`econtract.console._sessions`). Sign-in attempts are rate-limited per address and per
name, counted when they fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from econtract import db
from econtract.clock import CHINA
from econtract.config import Settings
from econtract.console import (
    ConsoleRole,
    SignedInUser,
    SignIn,
    SignInPolicy,
    SignInRefusedError,
    live_session,
    new_sign_in_nonce,
    sign_in,
    sign_in_form_token,
    sign_in_token_matches,
    sign_out,
    tokens_match,
)
from econtract.errors import EContractError, PermissionDeniedError
from econtract.logs import request_id_var
from econtract.ratelimit import RateLimitedError, RateLimiter
from econtract.services import Services
from econtract.supervision import Period, headline
from routes.middleware import problem
from routes.ratelimit import client_address

#: The session cookie and the sign-in form's cookie, both limited to the console's paths.
SESSION_COOKIE = "econtract_console"
SIGN_IN_COOKIE = "econtract_console_sign_in"
COOKIE_PATH = "/console"
#: How long a sign-in form stays good.
SIGN_IN_FORM_SECONDS = 3600
#: The rate-limit rule of failed sign-ins.
SIGN_IN_RULE = "console-sign-in"

pages = Jinja2Templates(directory=Path(__file__).parent.parent / "econtract" / "web" / "console")
router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: Console pages are never cached: they show who is signed in.
NO_STORE = {"Cache-Control": "no-store"}
#: Excel reads a CSV as UTF-8 (and so the Chinese names) only after this mark.
BOM = "\ufeff"

ROLE_NAMES = {
    ConsoleRole.SUPERVISOR.value: ("监察人员", "supervisor"),
    ConsoleRole.DEPARTMENT_ADMIN.value: ("部门管理员", "department admin"),
}


class ConsoleSignInRequiredError(EContractError):
    """A console page was asked for without a live session."""

    code = "console-sign-in-required"
    title = "Sign in to the console first."


class ConsoleCSRFError(EContractError):
    """A console form came without its CSRF token, or with another one."""

    code = "csrf"
    title = "The form's CSRF token is missing or wrong."


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _settings(request: Request) -> Settings:
    return _services(request).settings


def _server_secret(settings: Settings) -> bytes:
    return settings.secret_key.get_secret_value().encode("utf-8")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).console_secure_cookie


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.console_limiter
    return limiter


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


# --- who is signed in ---------------------------------------------------------------------


def current_user(request: Request) -> SignedInUser:
    """The signed-in person; :class:`ConsoleSignInRequiredError` without a live session (a
    page answers it with a redirect to the sign-in form, anything else with 401)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ConsoleSignInRequiredError("No console session; sign in first.")
    services = _services(request)
    policy = SignInPolicy.from_settings(services.settings)
    with db.transaction(services.sessions) as session:
        user = live_session(session, token=token, policy=policy.session, now=services.clock.now())
    if user is None:
        raise ConsoleSignInRequiredError("The console session has ended; sign in again.")
    return user


CurrentUser = Annotated[SignedInUser, Depends(current_user)]
#: The dependency that gives a console route its signed-in person.
console_user = current_user


def require_role(*roles: ConsoleRole) -> Callable[[SignedInUser], SignedInUser]:
    """A dependency: the signed-in person, who must hold one of ``roles`` (403 otherwise)."""
    allowed = frozenset(role.value for role in roles)

    def dependency(user: CurrentUser) -> SignedInUser:
        if user.role not in allowed:
            raise PermissionDeniedError("This console page is not for your role.")
        return user

    return dependency


async def checked_form(request: Request, user: CurrentUser) -> SignedInUser:
    """A dependency of every console POST: the signed-in person, after the form's CSRF token
    was found to be their session's (:class:`ConsoleCSRFError` otherwise)."""
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not tokens_match(given, user.csrf_token):
        raise ConsoleCSRFError("The form's CSRF token is missing or not this session's.")
    return user


FormUser = Annotated[SignedInUser, Depends(checked_form)]


# --- sign-in and sign-out -----------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    zh: str
    en: str


REFUSED = _Message("用户名、密码或动态口令不正确，或账号暂被锁定。", SignInRefusedError().message)


def _sign_in_page(
    request: Request,
    *,
    status: int = 200,
    name: str = "",
    message: _Message | None = None,
    nonce: str | None = None,
) -> Response:
    settings = _settings(request)
    fresh = nonce is None
    nonce = nonce or new_sign_in_nonce()
    response = pages.TemplateResponse(
        request,
        "sign_in.html",
        {
            "service_name": settings.service_name,
            "csrf": sign_in_form_token(nonce, server_secret=_server_secret(settings)),
            "name": name,
            "message_zh": message.zh if message else "",
            "message_en": message.en if message else "",
        },
        status_code=status,
        headers=NO_STORE,
    )
    if fresh:
        response.set_cookie(
            SIGN_IN_COOKIE,
            nonce,
            max_age=SIGN_IN_FORM_SECONDS,
            path=COOKIE_PATH,
            secure=_secure(request),
            httponly=True,
            samesite="strict",
        )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request) -> Response:
    """The sign-in form, with a new signed CSRF token and its cookie."""
    return _sign_in_page(request)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in_submit(
    request: Request,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Check a person's name, password and one-time code; open a new session."""
    services = _services(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE)
    if not sign_in_token_matches(nonce, csrf, server_secret=_server_secret(services.settings)):
        raise ConsoleCSRFError("The sign-in form's token is missing or does not match its cookie.")
    address = client_address(request)
    keys = (address, f"console-name:{name.strip()}")
    limiter = _limiter(request)
    try:
        limiter.check(SIGN_IN_RULE, *keys)
    except RateLimitedError as exc:
        page = _sign_in_page(
            request,
            status=429,
            name=name,
            nonce=nonce,
            message=_Message(f"尝试次数过多，请 {exc.retry_after} 秒后再试。", exc.message),
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    attempt = SignIn(
        name=name,
        password=password,
        code=code,
        address=address.removeprefix("address:"),
        request_id=request_id_var.get(),
        previous_token=request.cookies.get(SESSION_COOKIE),
    )
    try:
        signed_in = sign_in(
            services, attempt=attempt, policy=SignInPolicy.from_settings(services.settings)
        )
    except SignInRefusedError:
        limiter.count(SIGN_IN_RULE, *keys)
        return _sign_in_page(request, status=401, name=name, nonce=nonce, message=REFUSED)
    response = RedirectResponse("/console", status_code=303, headers=NO_STORE)
    # Always a new token: whatever cookie the browser held before is replaced, never promoted.
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        max_age=int(services.settings.console_session_hours * 3600),
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
def sign_out_submit(request: Request, user: FormUser) -> Response:
    """End the session and go back to the sign-in form."""
    sign_out(
        _services(request),
        session_id=user.session_id,
        user_name=user.name,
        request_id=request_id_var.get(),
    )
    response = RedirectResponse("/console/sign-in", status_code=303, headers=NO_STORE)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def csv_download(filename: str, chunks: Iterable[str]) -> Response:
    """A console table as a CSV attachment named ``filename``: the BOM, then ``chunks`` (the
    text of ``econtract.csvsafe``, which neutralises formulas), streamed as they come."""
    # Only names the console makes itself go into the header: never text from a request.
    if not _FILENAME.fullmatch(filename):
        raise ValueError(f"Not a file name for a header: {filename!r}")

    def body() -> Iterator[str]:
        yield BOM
        yield from chunks

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.csv")


# --- the pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A link of the console's home page."""

    href: str
    zh: str
    en: str


#: The department pages (routes.console_department): a department admin's own department, a
#: supervisor's every department, read-only.
DEPARTMENT_LINKS = (
    Link("/console/certificates", "电子证照", "Certificates"),
    Link("/console/usage", "用证记录", "Uses"),
    Link("/console/envelopes", "签章流程", "Envelopes"),
    Link("/console/clients", "接口客户端", "API clients"),
    Link("/console/seals", "电子印章", "Seals"),
)


def links_of(user: SignedInUser) -> list[Link]:
    """The console's sections the signed-in person may open (filled in as they are built)."""
    return [
        Link("/console/overview", "统计图表", "Figures"),
        Link("/console/warnings", "监察预警", "Early warnings"),
        *DEPARTMENT_LINKS,
        Link("/console/reports", "月度通报", "Monthly report"),
    ]


#: The days the home page's totals cover (the figures page's default period too).
HOME_DAYS = 30


def overview_of(user: SignedInUser, services: Services) -> dict[str, Any]:
    """The data of the home page's overview block: the last :data:`HOME_DAYS` China days'
    totals of the departments ``user`` may see (a department admin's own; a supervisor's all)."""
    today = services.clock.now().astimezone(CHINA).date()
    period = Period(since=today - timedelta(days=HOME_DAYS - 1), until=today + timedelta(days=1))
    mine = None if user.role == ConsoleRole.SUPERVISOR.value else user.department_id
    return {"days": HOME_DAYS, "totals": headline(services, period, department_id=mine)}


def console_page(
    request: Request,
    user: SignedInUser,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> Response:
    """A console page for ``user``: ``template`` (which extends ``base.html``) with ``context``
    and what every page's frame shows (who is signed in, in which role, the sections they may
    open, the sign-out form). Never cached."""
    services = _services(request)
    role_zh, role_en = ROLE_NAMES.get(user.role, (user.role, user.role))
    frame: dict[str, Any] = {
        "service_name": services.settings.service_name,
        "user": user,
        "role_zh": role_zh,
        "role_en": role_en,
        "links": links_of(user),
    }
    return pages.TemplateResponse(
        request, template, {**frame, **(context or {})}, status_code=status, headers=NO_STORE
    )


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser) -> Response:
    """The console's home page: who is signed in, in which role, and where to go."""
    return console_page(
        request, user, "home.html", {"overview": overview_of(user, _services(request))}
    )


# --- assembly -----------------------------------------------------------------------------


def _refused_page(request: Request, status: int, zh: str, en: str) -> Response:
    return pages.TemplateResponse(
        request,
        "refused.html",
        {"service_name": _settings(request).service_name, "message_zh": zh, "message_en": en},
        status_code=status,
        headers=NO_STORE,
    )


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleSignInRequiredError)
    if _wants_html(request):
        return RedirectResponse("/console/sign-in", status_code=303, headers=NO_STORE)
    response = problem(401, exc.code, exc.title, exc.message)
    response.headers["WWW-Authenticate"] = 'Cookie realm="console"'
    return response


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleCSRFError)
    if _wants_html(request):
        return _refused_page(
            request, 403, "表单已失效或来源不明，请重新打开页面后再提交。", exc.message
        )
    return problem(403, exc.code, exc.title, exc.message)


#: A refused console page in Chinese; the English is the refusal's own detail.
REFUSED_ZH = {
    403: "您无权查看或更改此内容。",
    404: "没有找到这条记录。",
    409: "记录的当前状态不允许这样操作。",
    422: "填写的内容有误，请检查后重试。",
}

_Handler = Callable[[Request, Exception], Awaitable[Response]]


def _refused_pages(problem_handler: Any) -> _Handler:
    """``problem_handler`` (the service's problem+json answer), except that a console page
    refused with 403, 404, 409 or 422 answers a browser with the refused page."""

    async def handler(request: Request, exc: Exception) -> Response:
        response: Response = await problem_handler(request, exc)
        zh = REFUSED_ZH.get(response.status_code)
        path = request.url.path
        on_console = path == COOKIE_PATH or path.startswith(COOKIE_PATH + "/")
        if zh is None or not on_console or not _wants_html(request):
            return response
        detail = json.loads(bytes(response.body)).get("detail") or ""
        return _refused_page(request, response.status_code, zh, str(detail))

    return handler


def install(app: FastAPI, settings: Settings, *sections: APIRouter) -> None:
    """Serve the console on ``app``: sign-in and the home page, the ``sections``' pages (whose
    modules build on this one), its rate limit, its refusals."""
    app.state.console_limiter = RateLimiter(
        limits={SIGN_IN_RULE: settings.console_rate_sign_in},
        redis_url=settings.redis_url,
        key_prefix=settings.rate_key_prefix,
    )
    app.add_exception_handler(ConsoleSignInRequiredError, _sign_in_required)
    app.add_exception_handler(ConsoleCSRFError, _csrf_refused)
    for family in (EContractError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(family, _refused_pages(app.exception_handlers[family]))
    app.include_router(router)
    for section in sections:
        app.include_router(section)
