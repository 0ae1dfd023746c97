"""Annotated copies (加注件) judged as such: for whom, for what, until when, and the original.

An annotated copy is a licence's pages under a marking, the original attached byte for byte
with a statement of the use beside it, sealed by the platform seal. A file is one when the
revision its last seal signed carries the statement attachment (:data:`STATEMENT_NAME`);
nothing added after that seal is read, so an attachment slipped in later is not believed.

The steps, each a reason the copy is not VALID when it fails:

1. :func:`find_copy` reads, from the signed revision only, the statement, the original it
   names and the marking text of every page (the overlay's :data:`MARKING_KEY`);
2. :func:`examine_copy` parses the statement strictly (bounded size, exact members), checks
   that the last seal is a platform seal, that the attachment's SHA-256 is the one stated,
   that every page is marked with the words the statement implies (a copy re-attributed to
   another department or matter fails here), whether its use has ended at the verification
   time, and verifies the original alone with the same policy (an original that is itself an
   annotated copy is not followed: the service copies licences, not copies);
3. :func:`judge_copy` gives one verdict: VALID only when the copy's own seals are VALID,
   the copy's content is sound, the original is VALID and its use has not ended; otherwise
   the worst of the copy's own verdict, INVALID for a content problem, the original's verdict
   and EXPIRED for a use that ended.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import PdfFileReader

from verify.errors import VerificationError
from verify.report import (
    AnnotatedCopyReport,
    CopyDepartment,
    CopyOriginal,
    Reason,
    Report,
    SignatureReport,
    Verdict,
)
from verify.words import COPY_WORDS, VERDICT_WORDS

__all__ = [
    "MARKING_KEY",
    "STATEMENT_FORMAT",
    "STATEMENT_NAME",
    "FoundCopy",
    "copy_facts",
    "copy_marking",
    "examine_copy",
    "find_copy",
    "judge_copy",
]

# The three names below are the ones signing.annotation writes; verify may not import
# signing, so they are repeated here and a test holds both sides equal.
STATEMENT_NAME = "econtract-annotation.json"
"""The attachment name of the annotation statement."""
STATEMENT_FORMAT = "econtract-annotated-copy/1"
"""The statement's version marker."""
MARKING_KEY = "/EcMarking"
"""The key of a page's marking overlay that holds the marking's text."""

#: The largest statement read; the service's are a few hundred bytes.
MAX_STATEMENT_BYTES = 16 * 1024
#: The most pages whose marking is read; a copy has as many pages as its licence.
MAX_PAGES = 2_000
_MAX_TREE_DEPTH = 16
_PARSE_ERRORS = (misc.PdfError, ValueError, KeyError, TypeError, RecursionError, AttributeError)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CODE = re.compile(r"[0-9A-Z]{18}")
# Worst first: a forgery, then what the issuer withdrew, then a change, then what awaits a
# party's seal, then what the registry does not know, then what lapsed, then what cannot be
# decided now.
_SEVERITY = (
    Verdict.INVALID,
    Verdict.REVOKED,
    Verdict.MODIFIED,
    Verdict.INCOMPLETE,
    Verdict.UNKNOWN,
    Verdict.SUSPENDED,
    Verdict.SUPERSEDED,
    Verdict.EXPIRED,
    Verdict.INDETERMINATE,
)


def copy_marking(*, department: str, matter: str, until: date) -> tuple[str, str]:
    """The words marked on every page of a copy, in Chinese and English: the one place that
    says them, for the copy that draws them and the verifier that compares them."""
    day = until.isoformat()
    return (
        f"仅供{department}办理{matter}使用，{day}前有效",
        f"For {matter} by {department} only, valid until {day}",
    )


@dataclass(frozen=True, kw_only=True)
class FoundCopy:
    """The parts of an annotated copy as the signed revision holds them."""

    statement: bytes | None
    """The statement's bytes (``None``: too large to read)."""
    attachments: dict[str, bytes | None]
    """Every other attachment by name (``None``: too large or unreadable)."""
    markings: tuple[str | None, ...]
    """Each page's marking text, in page order (``None``: the page carries none)."""
    problems: tuple[Reason, ...] = ()
    """What could not be read."""


@dataclass(frozen=True, kw_only=True)
class _Statement:
    for_department: CopyDepartment
    matter: str
    case_number: str | None
    valid_until: date
    valid_until_instant: datetime
    identifier: str
    file_name: str
    sha256: str
    usage_id: str


class _StatementError(ValueError):
    """The statement is not one the service writes."""


def find_copy(reader: PdfFileReader, revision: int, *, max_attachment: int) -> FoundCopy | None:
    """The copy's parts in ``revision`` (the one the last seal signed), or ``None`` when that
    revision carries no statement: then the file is not an annotated copy."""
    try:
        resolver = reader.get_historical_resolver(revision)
        specs = dict(_name_tree(_get(_get(resolver.root, "/Names", {}), "/EmbeddedFiles", None), 0))
    except _PARSE_ERRORS:
        return None
    if STATEMENT_NAME not in specs:
        return None
    problems: list[Reason] = []
    statement = _attachment(specs.pop(STATEMENT_NAME), MAX_STATEMENT_BYTES)
    attachments = {name: _attachment(spec, max_attachment) for name, spec in specs.items()}
    try:
        markings = tuple(_markings(resolver.root["/Pages"]))
    except _PARSE_ERRORS as exc:
        markings = ()
        problems.append(
            Reason(
                code="copy-pages-unreadable",
                zh="加注件的页面无法读取。",
                en=f"The copy's pages cannot be read: {exc}.",
            )
        )
    return FoundCopy(
        statement=statement, attachments=attachments, markings=markings, problems=tuple(problems)
    )


def examine_copy(
    found: FoundCopy,
    *,
    signatures: tuple[SignatureReport, ...],
    verified_at: datetime,
    verify_original: Callable[[bytes], tuple[Report, bool]],
) -> AnnotatedCopyReport:
    """The copy's section, its content judged (see the module, step 2).

    ``verify_original`` verifies an attachment alone and says whether it is itself an
    annotated copy; it may raise :class:`~verify.errors.VerificationError`."""
    problems = list(found.problems)
    seals = [s for s in signatures if s.kind == "seal"]
    platform = (
        bool(seals) and seals[-1].signer is not None and (seals[-1].signer.seal_kind == "platform")
    )
    if not platform:
        problems.append(
            Reason(
                code="copy-not-platform-seal",
                zh="文件带有加注声明，但不是本平台电子证照共享专用章加盖的加注件。",
                en="The file carries an annotation statement but is not sealed with the "
                "platform's seal for shared licences; it is no annotated copy of this service.",
            )
        )
    try:
        statement = _parse_statement(found.statement)
    except _StatementError as exc:
        problems.append(
            Reason(
                code="copy-statement-malformed",
                zh="加注件的加注声明格式不正确。",
                en=f"The copy's annotation statement is malformed: {exc}",
            )
        )
        return AnnotatedCopyReport(
            for_department=None,
            matter=None,
            case_number=None,
            valid_until=None,
            valid_until_instant=None,
            usage_id=None,
            original=CopyOriginal(identifier=None, sha256=None, attached_sha256=None, verdict=None),
            seal_verdict=Verdict.INVALID,
            platform_seal=platform,
            expired=False,
            problems=tuple(problems),
        )
    original, original_problems = _original(found, statement, verify_original)
    problems.extend(original_problems)
    problems.extend(_marking_problems(found.markings, statement))
    return AnnotatedCopyReport(
        for_department=statement.for_department,
        matter=statement.matter,
        case_number=statement.case_number,
        valid_until=statement.valid_until.isoformat(),
        valid_until_instant=statement.valid_until_instant,
        usage_id=statement.usage_id,
        original=original,
        seal_verdict=Verdict.INVALID,
        platform_seal=platform,
        expired=verified_at >= statement.valid_until_instant,
        problems=tuple(problems),
    )


def judge_copy(report: Report, original: Report | None = None) -> Report:
    """``report`` (whose verdict is the copy's own, from its seals and the registry) with
    the copy's verdict; ``original`` replaces the original's report (the registry's view of
    it). A report of no annotated copy is returned as it is."""
    copy = report.annotated_copy
    if copy is None:
        return report
    if original is not None:
        copy = dataclasses.replace(
            copy,
            original=dataclasses.replace(
                copy.original, verdict=original.verdict, reasons=original.reasons, report=original
            ),
        )
    own = report.verdict
    findings: list[tuple[Verdict, tuple[Reason, ...]]] = []
    if own is not Verdict.VALID:
        findings.append((own, report.reasons))
    findings.extend((Verdict.INVALID, (problem,)) for problem in copy.problems)
    verdict_of_original = copy.original.verdict
    if verdict_of_original is not None and verdict_of_original is not Verdict.VALID:
        words = VERDICT_WORDS[verdict_of_original.value]
        findings.append(
            (
                verdict_of_original,
                (
                    Reason(
                        code=f"original-{verdict_of_original.value.lower()}",
                        zh=f"所附原件{words.zh}，加注件随之{words.zh}。",
                        en=f"The attached original licence is {words.en}, and so is its copy.",
                    ),
                    *copy.original.reasons[:1],
                ),
            )
        )
    if copy.expired and copy.valid_until is not None:
        findings.append(
            (
                Verdict.EXPIRED,
                (
                    Reason(
                        code="copy-use-expired",
                        zh=f"加注件的使用期限已于{copy.valid_until}届满，不再有效；原件本身的效力"
                        "不受影响。",
                        en=f"The copy's use ended with {copy.valid_until}; it is no longer valid "
                        "as a copy (the original licence is judged on its own).",
                    ),
                ),
            )
        )
    section = dataclasses.replace(copy, seal_verdict=own)
    if not findings:
        assert copy.for_department is not None
        reason = Reason(
            code="copy-valid",
            zh=f"加注件有效：仅供{copy.for_department.name}办理{copy.matter}使用，"
            f"{copy.valid_until}前有效；所附原件有效。",
            en=f"A valid annotated copy: for {copy.matter} by {copy.for_department.name} "
            f"only, until {copy.valid_until}; the attached original is valid.",
        )
        return dataclasses.replace(
            report, reasons=(reason, *report.reasons), annotated_copy=section
        )
    findings.sort(key=lambda item: _SEVERITY.index(item[0]) if item[0] in _SEVERITY else 0)
    reasons = tuple(dict.fromkeys(r for _, found in findings for r in found))
    return dataclasses.replace(
        report, verdict=findings[0][0], reasons=reasons, annotated_copy=section
    )


def copy_facts(copy: AnnotatedCopyReport) -> tuple[tuple[str, str], ...]:
    """The section as label and value pairs in plain text, for whom first: what the HTML
    and PDF reports and the command line show, in the words of :data:`COPY_WORDS`."""
    department = copy.for_department
    ended = COPY_WORDS["use_ended" if copy.expired else "in_use"]
    original = copy.original
    verdict = VERDICT_WORDS[original.verdict.value].both if original.verdict else "-"
    return (
        (
            COPY_WORDS["for_department"].both,
            f"{department.name} ({department.code})" if department else "-",
        ),
        (COPY_WORDS["matter"].both, copy.matter or "-"),
        (COPY_WORDS["case_number"].both, copy.case_number or "-"),
        (
            COPY_WORDS["valid_until"].both,
            f"{copy.valid_until}, {ended.both}" if copy.valid_until else "-",
        ),
        (COPY_WORDS["usage_id"].both, copy.usage_id or "-"),
        (COPY_WORDS["original"].both, f"{original.identifier or '-'}: {verdict}"),
    )


def _original(
    found: FoundCopy,
    statement: _Statement,
    verify_original: Callable[[bytes], tuple[Report, bool]],
) -> tuple[CopyOriginal, list[Reason]]:
    """The original attachment the statement names, verified alone."""
    problems: list[Reason] = []
    data = found.attachments.get(statement.file_name)
    base = CopyOriginal(
        identifier=statement.identifier,
        sha256=statement.sha256,
        attached_sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
        verdict=None,
    )
    if data is None:
        problems.append(
            Reason(
                code="copy-original-missing",
                zh="加注件未附原件，或原件无法读取。",
                en=f"The copy does not carry its original {statement.file_name!r} in the sealed "
                "revision, or it cannot be read.",
            )
        )
        return base, problems
    if base.attached_sha256 != statement.sha256:
        problems.append(
            Reason(
                code="copy-original-mismatch",
                zh="所附原件与加注声明中的原件摘要不一致。",
                en="The attached original is not the one the statement names (SHA-256 differs).",
            )
        )
    try:
        report, is_copy = verify_original(data)
    except VerificationError as exc:
        problems.append(
            Reason(
                code="copy-original-unverifiable",
                zh="所附原件无法核验。",
                en=f"The attached original cannot be verified: {exc.message}",
            )
        )
        return base, problems
    if is_copy:
        problems.append(
            Reason(
                code="copy-of-a-copy",
                zh="所附原件本身是加注件；加注件只能由原件制作。",
                en="The attached original is itself an annotated copy; copies are made of "
                "licences only.",
            )
        )
    original = dataclasses.replace(
        base, verdict=report.verdict, reasons=report.reasons, report=report
    )
    return original, problems


def _marking_problems(markings: tuple[str | None, ...], statement: _Statement) -> list[Reason]:
    expected = "\n".join(
        copy_marking(
            department=statement.for_department.name,
            matter=statement.matter,
            until=statement.valid_until,
        )
    )
    if not markings:
        return [
            Reason(
                code="copy-marking-missing",
                zh="加注件的页面没有加注文字。",
                en="The copy's pages carry no marking.",
            )
        ]
    for number, text in enumerate(markings, start=1):
        if text != expected:
            return [
                Reason(
                    code="copy-marking-mismatch",
                    zh=f"第{number}页的加注文字与加注声明不符（用途或使用部门被改写）。",
                    en=f"The marking of page {number} does not say what the statement says "
                    "(the copy was attributed to another department, matter or date).",
                )
            ]
    return []


def _parse_statement(data: bytes | None) -> _Statement:
    """The statement, strictly: exactly the members the service writes, each of its type."""
    if data is None:
        raise _StatementError(f"it is larger than {MAX_STATEMENT_BYTES} bytes or unreadable.")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _StatementError(f"it is not JSON ({exc}).") from None
    members = {
        "format",
        "for_department",
        "matter",
        "case_number",
        "valid_until",
        "valid_until_instant",
        "original",
        "usage_id",
    }
    _exact(body, members, "the statement")
    if body["format"] != STATEMENT_FORMAT:
        raise _StatementError(f"its format is not {STATEMENT_FORMAT!r}.")
    department = body["for_department"]
    _exact(department, {"code", "name"}, "for_department")
    original = body["original"]
    _exact(original, {"identifier", "file_name", "sha256"}, "original")
    code = _text(department["code"], "for_department.code", 18)
    if _CODE.fullmatch(code) is None:
        raise _StatementError("for_department.code is not a unified social credit code.")
    sha256 = _text(original["sha256"], "original.sha256", 64)
    if _SHA256_HEX.fullmatch(sha256) is None:
        raise _StatementError("original.sha256 is not a lowercase hex SHA-256.")
    identifier = _text(original["identifier"], "original.identifier", 128)
    file_name = _text(original["file_name"], "original.file_name", 140)
    if file_name != f"{identifier}.pdf":
        raise _StatementError("original.file_name is not the identifier's file name.")
    case_number = body["case_number"]
    try:
        until = date.fromisoformat(_text(body["valid_until"], "valid_until", 10))
        ends = datetime.fromisoformat(_text(body["valid_until_instant"], "valid_until_instant", 40))
    except ValueError:
        raise _StatementError("valid_until or valid_until_instant is no ISO 8601 time.") from None
    if ends.tzinfo is None:
        raise _StatementError("valid_until_instant names no time zone.")
    return _Statement(
        for_department=CopyDepartment(
            code=code, name=_text(department["name"], "for_department.name", 200)
        ),
        matter=_text(body["matter"], "matter", 200),
        case_number=None if case_number is None else _text(case_number, "case_number", 64),
        valid_until=until,
        valid_until_instant=ends,
        identifier=identifier,
        file_name=file_name,
        sha256=sha256,
        usage_id=_text(body["usage_id"], "usage_id", 64),
    )


def _exact(value: Any, members: set[str], what: str) -> None:
    if not isinstance(value, dict):
        raise _StatementError(f"{what} is not an object.")
    if set(value) != members:
        raise _StatementError(f"{what} has members {sorted(value)}, not {sorted(members)}.")


def _text(value: Any, what: str, longest: int) -> str:
    if not isinstance(value, str) or not value or len(value) > longest:
        raise _StatementError(f"{what} is not a text of 1 to {longest} characters.")
    return value


def _get(container: Any, key: str, default: Any) -> Any:
    """``container[key]`` resolved in the signed revision (pyHanko's ``get`` leaves a
    reference unresolved), or ``default``."""
    # Not ``get``: pyHanko's dictionaries resolve references in ``[]`` only.
    return container[key] if key in container else default  # noqa: SIM401


def _name_tree(node: Any, depth: int) -> Iterator[tuple[str, generic.DictionaryObject]]:
    """The name tree's leaves (ISO 32000-1, 7.9.6), bounded in depth."""
    if node is None or depth > _MAX_TREE_DEPTH:
        return
    # A direct dictionary is its own object; a reference is resolved in the signed revision.
    node = node.get_object()
    names = _get(node, "/Names", None)
    if names is not None:
        items = list(names)
        for key, spec in zip(items[::2], items[1::2], strict=False):
            yield str(key), spec.get_object()
    for kid in _get(node, "/Kids", ()):
        yield from _name_tree(kid.get_object(), depth + 1)


def _attachment(spec: generic.DictionaryObject, largest: int) -> bytes | None:
    """An attachment's bytes, or ``None`` when it is larger than ``largest`` or unreadable."""
    try:
        stream = spec["/EF"]["/F"].get_object()
        declared = _get(_get(stream, "/Params", {}), "/Size", None)
        if declared is not None and int(declared) > largest:
            return None
        data: bytes = stream.data
    except _PARSE_ERRORS:
        return None
    return data if len(data) <= largest else None


def _markings(pages: Any) -> Iterator[str | None]:
    """Each page's marking text, walking the page tree in order, bounded in depth and count."""
    count = 0

    def walk(node: Any, depth: int) -> Iterator[str | None]:
        nonlocal count
        if depth > _MAX_TREE_DEPTH:
            raise ValueError("the page tree is too deep")
        node = node.get_object()
        if _get(node, "/Type", None) == "/Pages":
            for kid in _get(node, "/Kids", ()):
                yield from walk(kid, depth + 1)
            return
        count += 1
        if count > MAX_PAGES:
            raise ValueError(f"the copy has more than {MAX_PAGES} pages")
        yield _page_marking(node)

    yield from walk(pages, 0)


def _page_marking(page: generic.DictionaryObject) -> str | None:
    """The marking text of the page's overlay, the one XObject of its resources that holds
    :data:`MARKING_KEY`; ``None`` when there is none."""
    xobjects = _get(_get(page, "/Resources", {}), "/XObject", {})
    texts = []
    for value in xobjects.values():
        xobject = value.get_object()
        if MARKING_KEY in xobject:
            texts.append(str(xobject[MARKING_KEY]))
    # Two overlays that disagree are no marking a verifier may pick from.
    return texts[0] if len(set(texts)) == 1 else None
