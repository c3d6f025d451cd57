"""Text cleaning keeps every character that is not markup, and pages without a charset decode right.

The fuzz tests build review text from arbitrary Unicode (with "<" and ">" that are not tags) and
wrap it in real markup; whatever the mix, cleaning must not raise and must not lose a character.
"""

from __future__ import annotations

import codecs
import html
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse
from w3lib.encoding import html_to_unicode

from crawler.decoding import FALLBACK, declared_encoding, detect_encoding
from crawler.fields import _HTML_ELEMENTS, _clean_any, clean_text, clean_text_counted

# --------------------------------------------------------------------------- markup vs text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("from <10 to >20 dollars", "from <10 to >20 dollars"),
        ("<p>from <10 to >20 dollars</p>", "from <10 to >20 dollars"),
        ("if x<y and y>z then", "if x<y and y>z then"),
        ("I <3 this &lt;3", "I <3 this <3"),
        ("<b title='a>b'>bold</b> rest", "bold rest"),
        ("<p>one</p><p>two<br/>three</p>", "one\n\ntwo\nthree"),
        ("<script>var s = '<p>x</p>';</script>After", "After"),
        ("<style>p { color: red }</style>Styled", "Styled"),
        ("a<!-- hidden -->b", "ab"),
        ("<review-body>custom element</review-body>", "custom element"),
        ("<o:p>Word paste</o:p>", "Word paste"),
        ("<table><tr><td>cell</td><td>next</td></tr></table>", "cell next"),
        ("x </3 y <!! z > w", "x </3 y <!! z > w"),
        ("unfinished <b", "unfinished <b"),
        ("AT&T &notice R&D &bogus; &Eacute;", "AT&T &notice R&D &bogus; É"),
    ],
)
def test_markup_goes_and_text_stays(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


# --------------------------------------------------------------------------- format characters


def test_meaningful_format_characters_are_kept() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji through ZWJ
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "mi-khaham": ZWNJ is spelling
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # tag characters
    hebrew = "\u05e9\u05dc\u05d5\u05dd\u200f 123"  # right-to-left mark
    text = f"{family} {persian} {flag} {hebrew} \u2764\ufe0f"
    assert clean_text(text) == text


def test_invisible_junk_is_removed() -> None:
    raw = "\ufeffcus\u00adtomer\u200b ser\x00vice\x07 wo\u2060rks\x1b"
    assert clean_text(raw) == "customer service works"
    assert clean_text("line\u2028next\u2029para\x0cpage") == "line\nnext\n\npara page"


# --------------------------------------------------------------------------- invalid code points


def test_lone_surrogates_from_valid_json_are_replaced_and_counted() -> None:
    body = json.loads('"Great \\ud800 service \\udfff!"')  # valid JSON, invalid Unicode
    cleaned = clean_text_counted(body)
    assert cleaned == ("Great \ufffd service \ufffd!", 2)
    cleaned.text.encode("utf-8")  # storable: SQLite and JSON writers would raise on a surrogate


def test_invalid_code_points_from_entities_are_counted() -> None:
    cleaned = clean_text_counted("a &#xD800; b &#0; c &#xFDD0; d \ufdd0 e \ufffd")
    assert cleaned.text == "a \ufffd b \ufffd c \ufffd d \ufffd e \ufffd"
    assert cleaned.replaced == 4  # the U+FFFD that was already in the text is not ours


def test_clean_text_counted_of_nothing() -> None:
    assert clean_text_counted(None) == ("", 0)
    assert clean_text_counted("") == ("", 0)


# --------------------------------------------------------------------------- fuzz

# Text: any printable Unicode (ZWJ/ZWNJ included) without "<" and "&", which are added below.
_TEXT_CHARS = st.characters(
    exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp"), exclude_characters="<&"
) | st.sampled_from(["\u200d", "\u200c", "\u200f"])
_PLAIN = st.text(_TEXT_CHARS, max_size=30)
_NOT_A_TAG_NAME = st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda name: name not in _HTML_ELEMENTS)
# A "<" that is text: before a digit, space, symbol, non-ASCII letter or a word that is no HTML element.
_LT_TEXT = st.sampled_from(["<3", "<10", "< ", "<=", "<$5", "</3", "<!!", "<?!", "<-", "<\u00e9", "<<3"]) | (
    _NOT_A_TAG_NAME.map(lambda name: f"<{name} ")
)
_TEXT_PIECE = _PLAIN | _LT_TEXT | st.just(">")
_ATTR_VALUE = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\"'&"), max_size=10)


@st.composite
def _markup(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["open", "close", "empty", "comment", "script"]))
    name = draw(st.sampled_from(sorted(_HTML_ELEMENTS - {"script", "style", "template"})))
    if kind == "open":
        value = draw(_ATTR_VALUE)
        return f'<{name} class="{value}">' if draw(st.booleans()) else f"<{name.upper()}>"
    if kind == "close":
        return f"</{name}>"
    if kind == "empty":
        return f"<{name}/>"
    if kind == "comment":
        return f"<!-- {draw(_ATTR_VALUE).replace('-', '')} -->"
    return f"<script>if (a < b && c > d) {{ x = '{draw(_ATTR_VALUE)}'; }}</script>"


@st.composite
def _document(draw: st.DrawFn) -> tuple[str, str]:
    """(HTML fragment, the text it holds outside markup)."""
    pieces = draw(st.lists(st.tuples(st.booleans(), _TEXT_PIECE, _markup()), max_size=12))
    source, text = [], []
    for with_markup, piece, markup in pieces:
        source.append(piece)
        text.append(piece)
        if with_markup:
            source.append(markup)
            source.append(" ")  # markup never glues two words together in the source
            text.append(" ")
    return "".join(source), "".join(text)


def _letters(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_document())
def test_fuzz_no_character_outside_markup_is_lost(document: tuple[str, str]) -> None:
    source, text = document
    cleaned = clean_text_counted(source)
    assert _letters(cleaned.text) == _letters(text)
    assert cleaned.replaced == 0


@settings(max_examples=300, deadline=None)
@given(_document())
def test_fuzz_escaped_text_reads_the_same_as_raw_text(document: tuple[str, str]) -> None:
    _, text = document
    assert _letters(clean_text(html.escape(text))) == _letters(clean_text(text)) == _letters(text)


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(), max_size=80) | st.text(st.sampled_from("<>&#;/!-?[]x0 \ud800\x00"), max_size=40))
@example("&#\x080")  # an invisible character inside an entity: removed after decoding, it left "&#0"
@example("a&#\u200b38;b")
def test_fuzz_anything_cleans_without_error_to_storable_text(raw: str) -> None:
    cleaned = clean_text_counted(raw)
    cleaned.text.encode("utf-8")  # no lone surrogate survives
    assert cleaned.replaced >= sum(1 for ch in raw if "\ud800" <= ch <= "\udfff")
    assert clean_text(cleaned.text) == cleaned.text  # cleaning is stable


# --------------------------------------------------------------------------- decoding


def _page(text: str, encoding: str) -> bytes:
    return (
        "<html><head><title>Avis</title><style>p{margin:0}</style></head><body>"
        f"<div class='review'><p>{text}</p></div></body></html>"
    ).encode(encoding)


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("Service très lent, je suis déçu.", "latin-1", "cp1252"),
        ("très", "latin-1", "cp1252"),
        ("Prix 20€ – “génial”", "cp1252", "cp1252"),
        ("Der Kundendienst war schlecht, ich bin enttäuscht. Grüße", "cp1252", "cp1252"),
        ("Служба поддержки ответила быстро, но проблему не решили. Очень плохо.", "cp1251", "cp1251"),
        ("Служба поддержки ответила быстро, но проблему не решили. Очень плохо.", "koi8_r", "koi8-r"),
        ("Obsługa klienta była okropna, żadnej pomocy. Zażółć gęślą jaźń.", "cp1250", "cp1250"),
        ("カスタマーサービスの対応がとても悪かったです。", "shift_jis", "cp932"),
        ("客服态度很差，问题一直没有解决。", "gb18030", "gb18030"),
        ("très bien", "utf-8", "utf-8"),
        ("plain ascii", "ascii", "utf-8"),
    ],
)
def test_detect_encoding_of_undeclared_pages(text: str, encoding: str, expected: str) -> None:
    body = _page(text, encoding)
    found = detect_encoding(body)
    assert found == expected
    assert text in body.decode(found)


def test_latin1_without_charset_decodes_through_the_real_response() -> None:
    """What the spider sees: a Scrapy response with no charset anywhere, and what it should do."""
    body = _page("Le service était très lent", "latin-1")
    response = HtmlResponse("http://127.0.0.1/reviews", body=body, headers={"Content-Type": "text/html"})
    assert declared_encoding(response.headers.get("Content-Type"), response.body) is None
    # the proposed page.py decode: declared charset first, else detect_encoding
    used, text = html_to_unicode(None, response.body, auto_detect_fun=detect_encoding)
    assert used == "cp1252" and "était très lent" in text


def test_declared_encoding_reads_only_what_is_declared() -> None:
    assert declared_encoding(b"text/html; charset=ISO-8859-1", b"<p>x</p>") == "cp1252"  # WHATWG alias
    assert declared_encoding("text/html", b"<meta charset='koi8-r'><p>x</p>") == "koi8-r"
    assert declared_encoding(None, b"\xef\xbb\xbf<p>x</p>") == "utf-8"
    assert declared_encoding("text/html", b"<p>tr\xe8s</p>") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.just(bytes(range(256))) | st.just(bytes(range(128, 256)) * 10))
def test_detect_encoding_never_fails(body: bytes) -> None:
    found = detect_encoding(body)
    codecs.lookup(found)  # a codec Python has
    assert isinstance(body.decode(found, errors="replace"), str)
    if not body:
        assert found == "utf-8"


def test_undecidable_bytes_fall_back_to_windows_1252() -> None:
    assert detect_encoding(b"<p>caf\xe9</p>") == FALLBACK


# ------------------------------------------------------------------ the plain-ASCII fast path

_PLAIN = st.text(st.sampled_from("ab Z.,'!?-;#%  \t\n\r\x0b\x0c\x00\x7f<&é\u00a0\u2028"), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_PLAIN | st.text(max_size=40))
def test_the_plain_ascii_shortcut_cleans_as_every_step_would(text: str) -> None:
    """A one-line printable ASCII text skips the general steps; whatever the text, the result is theirs."""
    assert clean_text_counted(text) == (_clean_any(text) if text else ("", 0))
