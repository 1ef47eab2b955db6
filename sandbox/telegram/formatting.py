"""Text formatting as Telegram does it: HTML ``parse_mode`` and automatic entities.

Offsets and lengths of entities are counted in UTF-16 code units, like the real Bot API. The HTML
parser accepts exactly the tags Telegram documents and fails with Telegram's wording
(``can't parse entities: Unsupported start tag "br" at byte offset 5``) on anything else, so a bot
template that would break in production breaks here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.telegram.errors import BotAPIError, bad_request

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED_TAGS = {*_SIMPLE_TAGS, "a", "span", "blockquote", "tg-emoji"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[A-Za-z0-9-]*")
_ATTRIBUTE = re.compile(r"""\s*([A-Za-z0-9_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_ENTITY_REF = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z]+);")
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_URL = re.compile(r"(?<!\w)https?://[^\s<>\"]+")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class _OpenTag:
    name: str
    entity: dict[str, Any] | None
    start: int


class _HtmlParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.out_len = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def fail(self, detail: str) -> BotAPIError:
        return bad_request(f"can't parse entities: {detail}")

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode("utf-8"))

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.out_len += utf16_len(text)

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        i, source = 0, self.source
        while i < len(source):
            char = source[i]
            if char == "<":
                i = self.tag(i)
            elif char == "&":
                i = self.entity_ref(i)
            else:
                nxt = min(
                    p for p in (source.find("<", i), source.find("&", i), len(source)) if p >= 0
                )
                self.emit(source[i:nxt])
                i = nxt
        if self.stack:
            raise self.fail(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def entity_ref(self, i: int) -> int:
        match = _ENTITY_REF.match(self.source, i)
        if match is None:
            self.emit("&")
            return i + 1
        ref = match.group(1)
        if ref.startswith("#x"):
            self.emit(chr(int(ref[2:], 16)))
        elif ref.startswith("#"):
            self.emit(chr(int(ref[1:])))
        elif ref in _NAMED_ENTITIES:
            self.emit(_NAMED_ENTITIES[ref])
        else:  # Telegram keeps unknown named entities as text
            self.emit(match.group(0))
        return match.end()

    def tag(self, i: int) -> int:
        close = self.source.find(">", i)
        if close < 0:
            raise self.fail(f"Unclosed start tag at byte offset {self.byte_offset(i)}")
        if self.source.startswith("</", i):
            return self.end_tag(i, close)
        tag_name = _TAG_NAME.match(self.source, i + 1)
        assert tag_name is not None  # the pattern matches the empty string too
        name = tag_name.group(0)
        lowered = name.lower()
        if lowered not in _SUPPORTED_TAGS:
            raise self.fail(f'Unsupported start tag "{name}" at byte offset {self.byte_offset(i)}')
        attrs = self.attributes(self.source[i + 1 + len(name) : close], i)
        entity = self.entity_for(lowered, attrs, i)
        self.stack.append(_OpenTag(lowered, entity, self.out_len))
        return close + 1

    def attributes(self, text: str, at: int) -> dict[str, str]:
        attrs: dict[str, str] = {}
        pos = 0
        text = text.rstrip().removesuffix("/")
        while pos < len(text):
            match = _ATTRIBUTE.match(text, pos)
            if match is None or match.end() == pos:
                raise self.fail(f"Unclosed start tag at byte offset {self.byte_offset(at)}")
            value = next((g for g in match.groups()[1:] if g is not None), "")
            attrs[match.group(1).lower()] = _ENTITY_REF.sub(
                lambda m: _NAMED_ENTITIES.get(m.group(1), m.group(0)), value
            )
            pos = match.end()
        return attrs

    def entity_for(self, name: str, attrs: dict[str, str], at: int) -> dict[str, Any] | None:
        if name in _SIMPLE_TAGS:
            entity: dict[str, Any] = {"type": _SIMPLE_TAGS[name]}
            language = self.language_of(attrs) if name == "code" else None
            if language:
                entity["language"] = language
            return entity
        if name == "span":
            if attrs.get("class") != "tg-spoiler":
                raise self.fail('Tag "span" must have class "tg-spoiler"')
            return {"type": "spoiler"}
        if name == "blockquote":
            kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
            return {"type": kind}
        if name == "tg-emoji":
            if "emoji-id" not in attrs:
                raise self.fail('Tag "tg-emoji" must have attribute "emoji-id"')
            return {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
        href = attrs.get("href")  # <a>
        if not href:
            return None
        user = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if user:
            return {"type": "text_mention", "user": {"id": int(user.group(1)), "is_bot": False}}
        return {"type": "text_link", "url": href}

    def end_tag(self, i: int, close: int) -> int:
        name = self.source[i + 2 : close].strip().lower()
        if not self.stack:
            raise self.fail(f"Unexpected end tag at byte offset {self.byte_offset(i)}")
        top = self.stack[-1]
        if name and name != top.name:
            raise self.fail(f'Can\'t find end tag corresponding to start tag "{top.name}"')
        self.stack.pop()
        length = self.out_len - top.start
        if top.entity is not None and length > 0:
            entity = {"offset": top.start, "length": length, **top.entity}
            self.absorb_code_language(top.name, entity)
            self.entities.append(entity)
        return close + 1

    def absorb_code_language(self, name: str, entity: dict[str, Any]) -> None:
        # <pre><code class="language-python">...</code></pre> is one pre entity with a language.
        if name != "pre":
            return
        for inner in list(self.entities):
            same_span = inner["offset"] == entity["offset"] and inner["length"] == entity["length"]
            if same_span and inner["type"] == "code":
                self.entities.remove(inner)
                language = inner.get("language")
                if language:
                    entity["language"] = language

    @staticmethod
    def language_of(attrs: dict[str, str]) -> str | None:
        klass = attrs.get("class", "")
        return klass.removeprefix("language-") if klass.startswith("language-") else None


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into plain text and message entities.

    Raises :class:`BotAPIError` (400 ``can't parse entities: ...``) on malformed markup.
    """
    parser = _HtmlParser(source)
    return parser.parse()


def apply_parse_mode(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Turn a text plus ``parse_mode``/explicit ``entities`` into what Telegram stores."""
    if parse_mode and parse_mode.strip():
        mode = parse_mode.strip().lower()
        if mode != "html":
            # Only HTML is implemented; saying so beats storing markup the bot meant to format.
            raise bad_request(f"unsupported parse_mode {parse_mode!r} in the sandbox; use HTML")
        return parse_html(text)
    return text, list(entities or [])


def automatic_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself in a user's text: commands, URLs, mentions."""
    found: list[dict[str, Any]] = []
    for kind, pattern in (("bot_command", _COMMAND), ("url", _URL), ("mention", _MENTION)):
        for match in pattern.finditer(text):
            found.append(
                {
                    "type": kind,
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group(0)),
                }
            )
    found.sort(key=lambda e: e["offset"])
    return found
