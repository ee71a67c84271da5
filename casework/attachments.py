"""Objection attachments (the evidence an enterprise adds to its claim): checked by
their bytes, never by what the sender says they are. Pure.

Invariants:
- only the types of :data:`ALLOWED` are taken (PDF, PNG, JPEG), recognised by their
  magic bytes; the stored content type is the one the bytes show, so a page that
  serves the file never serves script or HTML under an image's name;
- at most ``max_bytes`` (``casework.max_attachment_bytes``); an empty file is refused;
- the file name kept is a display name: no directory part, no control characters, at
  most 120 characters (the bytes are stored in the database, never under that name).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from casework.errors import AttachmentRefused, AttachmentTooLarge

# content type -> the bytes a file of that type starts with
ALLOWED: dict[str, bytes] = {
    "application/pdf": b"%PDF-",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
}
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
MAX_NAME = 120
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"\\/:*?<>|]")


@dataclass(frozen=True)
class Attachment:
    file_name: str
    content_type: str
    size: int
    sha256: str
    data: bytes

    def as_json(self) -> dict[str, object]:
        """What a listing shows of an attachment (never its bytes)."""
        return {
            "file_name": self.file_name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }


def sniff(data: bytes) -> str | None:
    """The allowed content type the bytes show, or None."""
    for content_type, magic in ALLOWED.items():
        if data.startswith(magic):
            return content_type
    return None


def display_name(name: str, content_type: str) -> str:
    """A safe display name: the last path part, no control or reserved characters."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")[:MAX_NAME]
    return base or "attachment" + EXTENSIONS[content_type]


def check(name: str, data: bytes, *, max_bytes: int) -> Attachment:
    """An attachment ready to store; raises AttachmentTooLarge or AttachmentRefused."""
    if len(data) > max_bytes:
        raise AttachmentTooLarge(
            f"the attachment is {len(data)} bytes; at most {max_bytes} are taken",
            max_bytes=max_bytes,
        )
    if not data:
        raise AttachmentRefused("the attachment is empty", field="attachment")
    content_type = sniff(data)
    if content_type is None:
        raise AttachmentRefused(
            f"the attachment must be one of {sorted(ALLOWED)} (recognised by its content)",
            field="attachment",
        )
    return Attachment(
        file_name=display_name(name, content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
