"""Read a PDF's XMP packet with ``pdfinfo -meta`` (poppler), as another platform would."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from econtract.licence_metadata import XMP_NAMESPACE

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"


def read_xmp(pdf: Path) -> ET.Element:
    """The file's XMP packet, parsed."""
    text = subprocess.run(
        ["pdfinfo", "-meta", str(pdf)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    start, end = text.index("<x:xmpmeta"), text.index("</x:xmpmeta>") + len("</x:xmpmeta>")
    return ET.fromstring(text[start:end])


def licence_metadata(pdf: Path) -> dict[str, str]:
    """The GB/T 36903 properties of the packet, by name, written as attributes or elements."""
    found: dict[str, str] = {}
    prefix = f"{{{XMP_NAMESPACE}}}"
    for description in read_xmp(pdf).iter(f"{{{RDF}}}Description"):
        for name, value in description.attrib.items():
            if name.startswith(prefix):
                found[name.removeprefix(prefix)] = value
        for child in description:
            if child.tag.startswith(prefix):
                found[child.tag.removeprefix(prefix)] = child.text or ""
    return found


def dublin_core(pdf: Path, name: str) -> str:
    """The first ``rdf:li`` of a Dublin Core property (``title``, ``creator``)."""
    item = read_xmp(pdf).find(f".//{{{DC}}}{name}//{{{RDF}}}li")
    assert item is not None, f"no dc:{name}"
    return item.text or ""
