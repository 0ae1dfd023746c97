"""The cross-page seal (骑缝章): one seal cut into slices along the right edge of every page.

On paper the pages are fanned out and stamped once across their edges, so each page carries a
slice and a missing or swapped page shows. Here page *i* of *n* (counted from 0) shows the
strip ``[i·w, (i+1)·w]`` of the seal, ``w = diameter / n``, at its right edge: reading the
pages in order, from the first to the last, the seal is put together from left to right.

The slices are ordinary page content (one form XObject of the seal, shared by all pages, drawn
through a clipping rectangle) added to the writer that the seal's signature then signs: they
belong to the signed revision, so removing, adding or changing a page afterwards is a change
that validation reports. pyHanko allows one widget per signature field (pyHanko issue #529),
which is why the slices are page content and not widgets.

Pages may have an inherited ``/MediaBox``, a ``/CropBox`` and a ``/Rotate`` of any multiple of
90°: the slice sits on the right edge of the page *as displayed*, upright.
"""

from __future__ import annotations

import secrets

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signing.appearance import SealAppearance, seal_form_xobject
from signing.errors import PlacementError

_MIN_DIAMETER, _MAX_DIAMETER = 20.0, 400.0


def _inherited(page: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    """A page attribute, looked up through the page tree (``/MediaBox``, ``/CropBox`` and
    ``/Rotate`` are inheritable, ISO 32000-1 table 30)."""
    node: generic.DictionaryObject | None = page
    seen = 0
    while node is not None and seen < 64:  # a cyclic or absurdly deep tree stops here
        if key in node:
            value: generic.PdfObject = node[key]
            return value
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
        seen += 1
    return None


def _rectangle(value: generic.PdfObject | None) -> tuple[float, float, float, float] | None:
    """A PDF rectangle, normalised to (left, bottom, right, top); ``None`` if not one."""
    if not isinstance(value, generic.ArrayObject) or len(value) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(v.get_object()) for v in value)
    except (TypeError, ValueError):
        return None
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _visible_box(page: generic.DictionaryObject, number: int) -> tuple[float, float, float, float]:
    """The part of the page that is shown: the crop box clipped to the media box."""
    media = _rectangle(_inherited(page, "/MediaBox"))
    if media is None:
        raise PlacementError(f"Page {number} has no valid /MediaBox; it cannot be sealed.")
    crop = _rectangle(_inherited(page, "/CropBox")) or media
    box = (
        max(media[0], crop[0]),
        max(media[1], crop[1]),
        min(media[2], crop[2]),
        min(media[3], crop[3]),
    )
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        raise PlacementError(f"Page {number} shows nothing: its /CropBox misses its /MediaBox.")
    return box


def _rotation(page: generic.DictionaryObject, number: int) -> int:
    """The page's ``/Rotate``, as 0, 90, 180 or 270 (degrees clockwise when displayed)."""
    value = _inherited(page, "/Rotate")
    if value is None:
        return 0
    try:
        rotate = float(value)  # type: ignore[arg-type]  # checked by the except clause
    except (TypeError, ValueError):
        rotate = 0.5  # not a number: refused below
    if not rotate.is_integer() or int(rotate) % 90:
        raise PlacementError(
            f"Page {number} has /Rotate {value}; only multiples of 90 degrees are valid."
        )
    return int(rotate) % 360


def _display_matrix(
    box: tuple[float, float, float, float], rotate: int
) -> tuple[tuple[int, int, int, int, float, float], float, float]:
    """The matrix from display coordinates to the page's default user space, and the width
    and height of the page as displayed.

    Display coordinates have their origin at the bottom left of the page as a viewer shows it
    (after ``/Rotate``), x to the right, y up.
    """
    left, bottom, right, top = box
    width, height = right - left, top - bottom
    if rotate == 0:
        return (1, 0, 0, 1, left, bottom), width, height
    if rotate == 90:  # the top edge of user space is shown on the right
        return (0, 1, -1, 0, right, bottom), height, width
    if rotate == 180:
        return (-1, 0, 0, -1, right, top), width, height
    return (0, -1, 1, 0, left, top), height, width  # 270: the bottom edge is on the right


def _number(value: float) -> bytes:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return b"0" if text in ("-0", "") else text.encode("ascii")


def add_cross_page_seal(
    writer: IncrementalPdfFileWriter,
    appearance: SealAppearance,
    *,
    diameter: float = 119.0,
    y: float | None = None,
) -> None:
    """Stamp a cross-page seal in slices along the right edge of every page of ``writer``.

    Sign ``writer`` afterwards (``PdfSigner.sign_pdf(writer)``) so that the slices are in the
    signed revision.

    :param writer: the document, opened for an incremental update.
    :param appearance: what the seal shows.
    :param diameter: the seal's diameter in points (default 42 mm); each of *n* pages gets a
        slice ``diameter / n`` wide.
    :param y: height of the seal's centre above the bottom edge of the page as displayed;
        the middle of the page by default.
    :raises PlacementError: for a one-page document (a cross-page seal needs two pages or
        more), a diameter outside 20 to 400 points, a seal that does not fit on a page, or a
        page whose boxes or rotation are invalid.
    """
    if not _MIN_DIAMETER <= diameter <= _MAX_DIAMETER:
        raise PlacementError(
            f"A seal's diameter is {_MIN_DIAMETER:g} to {_MAX_DIAMETER:g} points, not {diameter}."
        )
    count = int(writer.root["/Pages"]["/Count"])
    if count < 2:
        raise PlacementError(
            "A cross-page seal joins two or more pages; this document has "
            f"{count} page. Use a visible seal instead."
        )
    width = diameter / count
    # Check every page before changing any, so that a refusal leaves the writer untouched.
    plans = []
    for index in range(count):
        page_ref, _ = writer.find_page_for_modification(index)  # type: ignore[no-untyped-call]
        page = page_ref.get_object()
        number = index + 1
        matrix, shown_width, shown_height = _display_matrix(
            _visible_box(page, number), _rotation(page, number)
        )
        centre = shown_height / 2 if y is None else y
        bottom = centre - diameter / 2
        if bottom < 0 or bottom + diameter > shown_height or width > shown_width:
            raise PlacementError(
                f"A cross-page seal of {diameter:g} points centred {centre:g} points above the "
                f"bottom does not fit on page {number} ({shown_width:g} × {shown_height:g} "
                "points as displayed)."
            )
        plans.append((matrix, shown_width, bottom))

    seal = seal_form_xobject(writer, appearance, diameter)
    # Fresh resource names: a document may already carry another department's cross-page
    # seal, and pages may share one resource dictionary (so each page gets its own name).
    prefix = "/QiFeng" + secrets.token_hex(6)
    for index, (matrix, shown_width, bottom) in enumerate(plans):
        name = f"{prefix}p{index}"
        slice_left = shown_width - width
        seal_left = shown_width - width * (index + 1)
        ops = b" ".join(
            [
                b"q",
                b" ".join(_number(v) for v in matrix) + b" cm",
                b" ".join(_number(v) for v in (slice_left, bottom, width, diameter)) + b" re W n",
                b"1 0 0 1 " + _number(seal_left) + b" " + _number(bottom) + b" cm",
                name.encode("ascii") + b" Do",
                b"Q",
            ]
        )
        # Isolate the page's own graphics state (it may leave a changed matrix or clip
        # behind), as pyHanko's stamps do: its content goes between q and Q.
        _add_content(writer, index, b"q", prepend=True)
        _add_content(writer, index, b"Q")
        resources = _dictionary({pdf_name("/XObject"): _dictionary({pdf_name(name): seal})})
        _add_content(writer, index, ops, resources)


def _add_content(
    writer: IncrementalPdfFileWriter,
    index: int,
    data: bytes,
    resources: generic.DictionaryObject | None = None,
    *,
    prepend: bool = False,
) -> None:
    """Add a content stream to page ``index``, before or after its content."""
    stream = writer.add_object(generic.StreamObject(stream_data=data))
    writer.add_stream_to_page(  # type: ignore[no-untyped-call]  # untyped upstream
        index, stream, resources, prepend=prepend
    )


def _dictionary(entries: dict[str, generic.PdfObject]) -> generic.DictionaryObject:
    return generic.DictionaryObject(entries)  # type: ignore[no-untyped-call]  # untyped upstream
