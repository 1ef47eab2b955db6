"""Pure units of the emulator: HTML entities, automatic entities, flood buckets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.telegram.errors import BotAPIError
from sandbox.telegram.formatting import automatic_entities, parse_html, utf16_len
from sandbox.telegram.ratelimit import FloodBuckets, RateLimits


def test_html_entities_offsets_in_utf16():
    text, entities = parse_html(
        '😀 <b>bold <i>both</i></b> &lt;x&gt; <a href="https://a.b">link</a>'
    )
    assert text == "😀 bold both <x> link"
    assert entities == [
        {"offset": 3, "length": 9, "type": "bold"},
        {"offset": 8, "length": 4, "type": "italic"},
        {"offset": 17, "length": 4, "type": "text_link", "url": "https://a.b"},
    ]


def test_pre_with_language_and_spoiler():
    text, entities = parse_html(
        '<pre><code class="language-python">x = 1</code></pre><tg-spoiler>s</tg-spoiler>'
    )
    assert text == "x = 1s"
    assert entities == [
        {"offset": 0, "length": 5, "type": "pre", "language": "python"},
        {"offset": 5, "length": 1, "type": "spoiler"},
    ]


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("a<br>b", 'Unsupported start tag "br" at byte offset 1'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</i></b>", 'Can\'t find end tag corresponding to start tag "b"'),
        ("é <b", "Unclosed start tag at byte offset 3"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_malformed_html_is_rejected(source, detail):
    with pytest.raises(BotAPIError) as error:
        parse_html(source)
    assert error.value.error_code == 400
    assert error.value.description == f"Bad Request: can't parse entities: {detail}"


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)),
        max_size=50,
    )
)
def test_plain_text_passes_unchanged(text):
    assert parse_html(text) == (text, [])


def test_automatic_entities():
    entities = automatic_entities("/start@shop_bot see https://x.io @ann_x")
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bot_command", 0, 15),
        ("url", 20, 12),
        ("mention", 33, 6),
    ]
    assert utf16_len("😀a") == 3


def test_token_buckets_with_a_fake_clock():
    now = [0.0]
    limiter = FloodBuckets(
        RateLimits(per_chat_per_second=1, per_chat_burst=2), clock=lambda: now[0]
    )
    limiter.hit(1, 10)
    limiter.hit(1, 10)
    with pytest.raises(BotAPIError) as error:
        limiter.hit(1, 10)
    assert error.value.retry_after == 1
    limiter.hit(1, 11)  # another chat has its own bucket
    now[0] = 1.0
    limiter.hit(1, 10)
    limiter.configure(RateLimits.disabled())
    for _ in range(100):
        limiter.hit(1, 10)


def test_idle_reply_language_falls_back_to_the_primary_tag_then_the_default() -> None:
    from sandbox.telegram.idle import idle_text

    texts = {"": "any", "en": "english", "ru": "русский"}
    assert idle_text(texts, "ru") == "русский"
    assert idle_text(texts, "en-GB") == "english"
    assert idle_text(texts, "de") == "any"
    assert idle_text(texts, None) == "any"
    assert idle_text({"ru": "только"}, "de") == "только"
