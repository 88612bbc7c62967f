"""The opaque cursor a newest-first list hands out and takes back: a leaf both schemas and managers use."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

CURSOR_MAX_LENGTH = 200


@dataclass(frozen=True)
class Cursor:
    """Where a newest-first list stopped: the timestamp and id of the last item given.

    Clients see it as an opaque string (URL-safe base64 of "<ISO timestamp>|<hex id>"); the next page
    is everything strictly older in (timestamp, id) order, found through the index instead of
    skipping OFFSET rows, so page 1000 costs what page 1 does.
    """

    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.at.astimezone(UTC).isoformat()}|{self.id.hex}"
        return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor a token stands for; ValueError for anything encode() did not make."""
        if not token or len(token) > CURSOR_MAX_LENGTH:
            raise ValueError("bad cursor length")
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode("ascii")
        at, separator, hex_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if not separator or moment.tzinfo is None or len(hex_id) != 32:
            raise ValueError("not a cursor")
        try:
            at_utc = moment.astimezone(UTC)
        except OverflowError as error:  # a forged timestamp at the edge of the calendar, e.g. 9999-12-31T23:59-23:59
            raise ValueError("cursor timestamp out of range") from error
        return cls(at=at_utc, id=uuid.UUID(hex=hex_id))
