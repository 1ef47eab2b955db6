"""Typed access to Bot API call parameters, whatever way the bot sent them.

Telegram accepts parameters as a query string, ``application/x-www-form-urlencoded``,
``application/json`` or ``multipart/form-data``. In the form encodings every value is a string and
nested objects (``reply_markup``, ``entities``) arrive JSON-encoded, which is how aiogram's
``AiohttpSession`` sends them; in a JSON body they arrive already typed. :class:`Params` hides the
difference and raises Telegram-worded errors for values of the wrong type.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

from sandbox.telegram.errors import bad_request


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded in a multipart request."""

    data: bytes
    filename: str
    content_type: str


class Params:
    """Parameters of one Bot API call with Telegram-like coercion rules."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload] | None = None):
        self._values = dict(values)
        self._uploads = dict(uploads or {})

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) not in (None, "")

    def raw(self, name: str) -> Any:
        """The value as received, or ``None``."""
        return self._values.get(name)

    def str(self, name: str, *, required: bool = False) -> str | None:
        """A string parameter; numbers sent in JSON bodies are accepted as Telegram does."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool | dict | list):
            raise bad_request(f'field "{name}" must be of type String')
        return str(value)

    def int(self, name: builtins.str, *, required: builtins.bool = False) -> builtins.int | None:
        """An integer parameter."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def float(self, name: builtins.str) -> builtins.float | None:
        """A float parameter (latitude, longitude...)."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Float') from None

    def bool(self, name: builtins.str, *, default: builtins.bool = False) -> builtins.bool:
        """A boolean parameter: ``true``/``false``/``1``/``0`` in form encodings."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def json(self, name: builtins.str, *, what: builtins.str | None = None) -> Any:
        """A structured parameter: decoded when it arrived as a JSON string."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    @overload
    def chat_id(
        self, name: builtins.str = ..., *, required: Literal[True] = ...
    ) -> builtins.int | builtins.str: ...

    @overload
    def chat_id(
        self, name: builtins.str = ..., *, required: builtins.bool
    ) -> builtins.int | builtins.str | None: ...

    def chat_id(
        self, name: builtins.str = "chat_id", *, required: builtins.bool = True
    ) -> builtins.int | builtins.str | None:
        """A chat id: an integer or an ``@username`` string."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def file(self, name: builtins.str) -> Upload | builtins.str | None:
        """An InputFile parameter: an upload, or a ``file_id``/URL string.

        Uploads arrive either under the parameter's own name or, as aiogram sends them, under a
        random field referenced by ``attach://<field>``.
        """
        if name in self._uploads:
            return self._uploads[name]
        value = self.str(name)
        if value is None:
            return None
        if value.startswith("attach://"):
            upload = self._uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"file {value} not found in the request")
            return upload
        return value
