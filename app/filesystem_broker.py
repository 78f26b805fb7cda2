"""Kombu's ``filesystem://`` transport (the quick start's broker), with messages that appear whole.

Kombu's own ``_put`` creates the message file under its final name, then
locks it and writes. The consumer lists the folder, moves each file matching
its queue and reads it, and ``flock`` does not stop a move: a consumer that
polls between the create and the write takes an empty file, fails to decode
it, and the message is gone. Under load that happens (a rule test once waited
a minute for an event whose message had vanished). Here the message is
written under a name no queue matches (``….msg.part``) and renamed into place
once complete; a rename within a folder is atomic, so a consumer sees either
nothing or the whole message.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # kombu's own two bases disagree
        """Put ``payload`` onto ``queue``: written aside, then renamed to the name consumers look for."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as out:
                out.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    """Make ``filesystem://`` URLs use this transport, in this process (web, worker and beat call it)."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
