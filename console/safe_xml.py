"""Untrusted XML read safely, and XML written back as text (libvirt domains and networks).

Untrusted XML is parsed with ``defusedxml`` (no DTDs, no entities, no external references) and
only after a size check.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # writing only; untrusted text goes through safe_parse

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError as SafeParseError
from defusedxml.ElementTree import fromstring as safe_fromstring

from console.errors import InvalidInput

MAX_XML_BYTES = 64 * 1024


def to_text(element: ET.Element) -> str:
    ET.indent(element)
    return ET.tostring(element, encoding="unicode")


def safe_parse(text: object, *, what: str = "XML", field_name: str = "xml") -> ET.Element:
    """Parse untrusted XML: size-capped, no DTD, no entities, no external references."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"the {what} is empty", field=field_name)
    size = len(text.encode())
    if size > MAX_XML_BYTES:
        raise InvalidInput(
            f"the {what} is {size} bytes; at most {MAX_XML_BYTES // 1024} KiB is accepted", field=field_name
        )
    if "\x00" in text:
        raise InvalidInput(f"the {what} contains NUL characters", field=field_name)
    try:
        return safe_fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidInput(
            f"the {what} was refused: DTDs, entities and external references are not allowed ({exc})",
            field=field_name,
        ) from None
    except (SafeParseError, ET.ParseError, ValueError) as exc:
        raise InvalidInput(f"the {what} is not well-formed: {exc}", field=field_name) from None
