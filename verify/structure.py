"""The file's bytes, judged before and beside pyHanko.

Two checks pyHanko does not make:

- :func:`prescan` refuses, before any parsing, what would make the parser slow, deep or
  large: an oversized file, no ``%PDF-`` header, too many objects, nesting deeper than the
  recursive parser should descend;
- :func:`check_revisions` holds each revision against the bytes. pyHanko reports a seal
  followed by a DSS update as ENTIRE_REVISION + LTA_UPDATES even when garbage, or objects
  no cross-reference section lists, were appended; here every revision after the seal must
  be exactly its referenced objects, its cross-reference section and trailer, and
  ``startxref``/``%%EOF``, each revision beginning where the previous one ended, with only
  line ends after the last ``%%EOF``.
"""

from __future__ import annotations

import io
import re

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.xref import XRefSectionMetaInfo, XRefSectionType

from verify.errors import MalformedPDFError, NotAPDFError, TooLargeError
from verify.policy import VerificationLimits
from verify.report import StructureReport

_HEADER_WINDOW = 1024
# Tokens that matter for nesting; a stream body is skipped whole, a string, a hex string or
# a comment too. Skipping a hex string with find() matters: a seal's /Contents is tens of
# thousands of hex digits, which the token search would otherwise walk one by one.
_TOKEN = re.compile(rb"<<|>>|[<\[\]()%]|(?<=[\s>])stream(?=\r?\n)")
_STRING_TOKEN = re.compile(rb"[()\\]")
_EOL = re.compile(rb"[\r\n]")
_OBJECT_HEADER = re.compile(rb"(\d{1,10})\s+(\d{1,5})\s+obj\b")
_BODY_TOKEN = re.compile(rb"endobj|<<|[(<%]|(?<=[\s>])stream(?=\r?\n)")
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s*%%EOF")
# pyHanko's table parser stops after the "trailer" keyword; accept it either way.
_TRAILER = re.compile(rb"\s*(?:trailer\s*)?(?=<<)")
_WHITESPACE = b" \t\r\n\f\x00"
_LINE_END_WHITESPACE = b" \t\r\n"


def prescan(data: bytes, limits: VerificationLimits) -> None:
    """Refuse a file too large, not a PDF, with too many objects or too deeply nested."""
    if len(data) > limits.max_file_size:
        raise TooLargeError(
            f"The file has {len(data)} bytes; at most {limits.max_file_size} are accepted.",
            limit=limits.max_file_size,
            actual=len(data),
        )
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise NotAPDFError("The file is not a PDF: it has no %PDF- header.")
    if b"%%EOF" not in data[-_HEADER_WINDOW * 64 :]:
        raise MalformedPDFError("The file is not a complete PDF: it has no %%EOF marker.")
    # Counting "endobj" runs at C speed; a regex for "N G obj" backtracks on the long digit
    # runs of a signature's hex /Contents. Objects inside object streams are bounded by
    # pyHanko's object-stream decode limits and by the trailer's /Size (checked after
    # parsing).
    objects = data.count(b"endobj")
    if objects > limits.max_objects:
        raise TooLargeError(
            f"The file has {objects} objects; at most {limits.max_objects} are accepted.",
            limit=limits.max_objects,
            actual=objects,
        )
    depth = nesting_depth(data, limits.max_nesting)
    if depth > limits.max_nesting:
        raise MalformedPDFError(
            f"The file nests arrays or dictionaries more than {limits.max_nesting} deep."
        )


def nesting_depth(data: bytes, stop_above: int) -> int:
    """The deepest nesting of ``[`` and ``<<`` outside strings, hex strings, comments and
    stream bodies.

    Stops counting once ``stop_above`` is exceeded. An unbalanced closer only resets the
    count to zero, so a forged closer cannot hide depth that follows it.
    """
    depth = deepest = 0
    pos = 0
    length = len(data)
    while pos < length:
        match = _TOKEN.search(data, pos)
        if match is None:
            break
        token = match.group()
        pos = match.end()
        if token in (b"[", b"<<"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    return deepest
        elif token in (b"]", b">>"):
            depth = max(0, depth - 1)
        elif token == b"(":
            pos = _skip_string(data, pos)
        elif token == b"<":
            # Nothing nests inside a hex string; the parser refuses any non-hex byte in it.
            close = data.find(b">", pos)
            pos = close + 1 if close >= 0 else length
        elif token == b"%":
            eol = _EOL.search(data, pos)
            pos = eol.end() if eol else length
        elif token == b"stream":
            end = data.find(b"endstream", pos)
            pos = end + len(b"endstream") if end >= 0 else length
        # A stray ")" outside a string is a syntax error pyHanko reports; ignore it here.
    return deepest


def _skip_string(data: bytes, pos: int) -> int:
    """The position after the literal string whose opening ``(`` ends at ``pos``."""
    level = 1
    while level:
        match = _STRING_TOKEN.search(data, pos)
        if match is None:
            return len(data)
        pos = match.end()
        char = match.group()
        if char == b"\\":
            pos += 1
        elif char == b"(":
            level += 1
        else:
            level -= 1
    return pos


def check_revisions(reader: PdfFileReader, data: bytes, *, protected: int) -> StructureReport:
    """Hold the revisions after revision ``protected`` against the file's bytes.

    ``protected`` is the revision of the last seal (its bytes are covered by the seal's
    digest), or ``-1`` when nothing is sealed. Revision 0 is only checked for its end.
    """
    xrefs = reader.xrefs
    total = xrefs.total_revisions
    problems: list[str] = []
    first = max(protected, 0)
    stream = io.BytesIO(data)
    end = 0
    for revision in range(first, total):
        meta = xrefs.get_xref_container_info(revision)
        if not _xref_at(data, meta):
            problems.append(
                f"Revision {revision}: startxref points at {meta.declared_startxref}, but its "
                "cross-reference section is not there."
            )
        if revision > first:
            problems.extend(_check_objects(reader, data, revision, end, meta))
        revision_end = _revision_end(reader, stream, data, meta)
        if revision_end is None:
            problems.append(
                f"Revision {revision}: its trailer is not followed by startxref "
                f"{meta.declared_startxref} and %%EOF."
            )
            return StructureReport(revisions=total, clean=False, problems=tuple(problems))
        end = revision_end
    tail = data[end:]
    if tail.strip(_LINE_END_WHITESPACE):
        problems.append(
            f"{len(tail.strip(_LINE_END_WHITESPACE))} stray bytes follow the last %%EOF "
            f"(at offset {end})."
        )
    return StructureReport(revisions=total, clean=not problems, problems=tuple(problems))


def _xref_at(data: bytes, meta: XRefSectionMetaInfo) -> bool:
    """Whether the revision's cross-reference section starts exactly where startxref says
    (pyHanko silently corrects an offset that is off by a few bytes)."""
    if meta.xref_section_type is XRefSectionType.STREAM:
        return meta.start_location == meta.declared_startxref
    return data.startswith(b"xref", meta.declared_startxref)


def _revision_end(
    reader: PdfFileReader, stream: io.BytesIO, data: bytes, meta: XRefSectionMetaInfo
) -> int | None:
    """The offset just after the ``%%EOF`` that closes the revision of ``meta``."""
    pos = meta.end_location
    if meta.xref_section_type in (XRefSectionType.STANDARD, XRefSectionType.HYBRID_MAIN):
        trailer = _TRAILER.match(data, pos)
        if trailer is None:
            return None
        stream.seek(trailer.end())
        try:
            generic.DictionaryObject.read_from_stream(stream, generic.TrailerReference(reader))  # type: ignore[no-untyped-call]
        except (misc.PdfError, ValueError):
            return None
        pos = stream.tell()
    else:
        pos = _skip_whitespace(data, pos)
        if data.startswith(b"endobj", pos):
            pos += len(b"endobj")
    pos = _skip_whitespace(data, pos)
    match = _STARTXREF.match(data, pos)
    if match is None or int(match.group(1)) != meta.declared_startxref:
        return None
    return match.end()


def _check_objects(
    reader: PdfFileReader,
    data: bytes,
    revision: int,
    start: int,
    meta: XRefSectionMetaInfo,
) -> list[str]:
    """Every byte between the previous revision's end and this cross-reference section must
    be an object this revision's section lists at exactly that offset."""
    section = reader.xrefs.get_xref_data(revision)
    listed = {offset: idnum for idnum, (_, offset) in section.standard_xrefs.items()}
    problems = [
        f"Revision {revision}: object {idnum} is listed at offset {offset}, outside the "
        "revision's own bytes."
        for offset, idnum in listed.items()
        if not start <= offset <= meta.declared_startxref
    ]
    pos = _skip_whitespace(data, start)
    while pos < meta.declared_startxref:
        if pos not in listed:
            problems.append(
                f"Revision {revision}: bytes at offset {pos} are not an object its "
                "cross-reference section lists."
            )
            return problems
        after = _object_end(data, pos, listed[pos])
        if after is None:
            problems.append(f"Revision {revision}: the object at offset {pos} is malformed.")
            return problems
        pos = _skip_whitespace(data, after)
    return problems


def _object_end(data: bytes, pos: int, idnum: int) -> int | None:
    """The offset after ``endobj`` of the object at ``pos``; ``None`` if it is not object
    ``idnum`` or has no end.

    A token scan at C speed rather than pyHanko's parser, which reads a signature's
    /Contents hex string token by token. Strings, hex strings, comments and stream bodies
    are skipped, so an ``endobj`` inside them does not end the object early; a stream body
    containing ``endstream`` ends it early, which reports a problem (never hides one).
    """
    header = _OBJECT_HEADER.match(data, pos)
    if header is None or int(header.group(1)) != idnum:
        return None
    at = header.end()
    while True:
        match = _BODY_TOKEN.search(data, at)
        if match is None:
            return None
        token = match.group()
        if token == b"endobj":
            return match.end()
        if token == b"(":
            at = _skip_string(data, match.end())
        elif token == b"<<":
            at = match.end()
        elif token == b"<":
            close = data.find(b">", match.end())
            if close < 0:
                return None
            at = close + 1
        elif token == b"%":
            eol = _EOL.search(data, match.end())
            at = eol.end() if eol else len(data)
        else:  # stream
            close = data.find(b"endstream", match.end())
            if close < 0:
                return None
            at = close + len(b"endstream")


def _skip_whitespace(data: bytes, pos: int) -> int:
    length = len(data)
    while pos < length and data[pos] in _WHITESPACE:
        pos += 1
    return pos
