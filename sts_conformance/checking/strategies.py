"""Hypothesis strategies for token names and role lists, and labels for what was generated.

Names cover the whole of Unicode except lone surrogates (they cannot travel in JSON as
text): letters of many scripts, emoji and emoji sequences, combining marks, right-to-left
text and bidi controls, zero-width and control characters, white space at the edges or
alone, the empty string, JSON- and URL-special characters, and lengths from 1 to far past
any plausible limit. The boundary lengths in :data:`BOUNDARY_LENGTHS` are generated on
purpose (a sampled length, then text of exactly that length), not left to chance.

Role lists cover the empty list, one and many roles, duplicates, the predefined roles,
unknown roles, and role names with commas, spaces, Unicode or altered case.

Nothing generated contains the shapes the redactor masks as secrets (``svctok-``) or the
harness's own name prefix (``stsct-``), so a generated value is never mistaken for a
secret in a failure report, nor for a token of this run.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from hypothesis import strategies as st

#: Name lengths (in code points) that are generated explicitly: either side of the limits
#: implementations commonly pick (64, 256, 1024 characters or bytes), and far past them.
BOUNDARY_LENGTHS: tuple[int, ...] = (1, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 4096, 16384)

#: The roles every deployment of the product predefines (SaaS adds more).
PREDEFINED_ROLES: tuple[str, ...] = (
    "stackstate-admin",
    "stackstate-power-user",
    "stackstate-k8s-troubleshooter",
    "stackstate-guest",
)

#: White space as Unicode and JSON see it, ASCII and beyond.
WHITESPACE = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
#: Characters that take no room on screen (a name can look empty or look like another).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
#: Characters that change the direction of the text around them.
BIDI_CONTROLS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: C0 and C1 control characters, NUL and DEL included.
CONTROLS = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
#: Characters with a meaning in JSON, URLs, shells, HTML or SQL.
SPECIAL_CHARS = "\"\\/{}[]:,?#&=%+@;<>'`|^~ .*$!()\t\n"
#: Whole fragments that a careless implementation might interpret.
SPECIAL_FRAGMENTS = (
    "%00",
    "%2F",
    "%2e%2e%2f",
    "../",
    "..",
    "\\u0000",
    '\\"',
    "?a=1&b=2",
    "#frag",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "'; DROP TABLE tokens; --",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "null",
    "true",
    "0",
    "-1",
    "1e309",
    "{}",
    "[]",
    '{"name":"x"}',
    "\r\nX-Injected: 1",
)
#: Emoji that are more than one code point: modifiers, ZWJ sequences, flags, keycaps.
EMOJI_SEQUENCES = (
    "\U0001f44d\U0001f3fd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "\U0001f1f3\U0001f1f1",
    "\u2764\ufe0f",
    "\U0001f9d1\U0001f3ff\u200d\U0001f680",
    "1\ufe0f\u20e3",
)

# Code point ranges of scripts: (first, last), each a contiguous block.
_SCRIPTS: dict[str, tuple[int, int]] = {
    "latin-extended": (0x00C0, 0x024F),
    "greek": (0x0370, 0x03FF),
    "cyrillic": (0x0400, 0x04FF),
    "armenian": (0x0531, 0x058A),
    "hebrew": (0x05D0, 0x05EA),
    "arabic": (0x0620, 0x064A),
    "devanagari": (0x0900, 0x097F),
    "thai": (0x0E01, 0x0E5B),
    "georgian": (0x10A0, 0x10FF),
    "ethiopic": (0x1200, 0x137C),
    "hangul": (0xAC00, 0xD7A3),
    "hiragana-katakana": (0x3041, 0x30FF),
    "cjk": (0x4E00, 0x9FFF),
    "math-alphanumeric": (0x1D400, 0x1D7FF),
    "emoji": (0x1F300, 0x1FAFF),
    "cuneiform": (0x12000, 0x123FF),
}

#: The alphabets of names of an exact length: one byte in UTF-8 and one UTF-16 unit
#: (``ascii``), several UTF-8 bytes but one UTF-16 unit (``bmp``), four UTF-8 bytes and two
#: UTF-16 units (``astral``) — so a limit counted in any of those units is found.
LENGTH_ALPHABETS: tuple[str, ...] = ("ascii", "bmp", "astral")

_FORBIDDEN = (("svctok-", "svctok_"), ("stsct-", "stsct_"))


def defang(text: str) -> str:
    """Rewrite the shapes the harness reserves (secrets, its own names), keeping the length."""
    for shape, harmless in _FORBIDDEN:
        if shape in text:
            text = text.replace(shape, harmless)
    return text


# -- characters ----------------------------------------------------------------------------


def any_characters() -> st.SearchStrategy[str]:
    """Any Unicode scalar value: every plane and category, lone surrogates excluded."""
    return st.characters(codec="utf-8")


def script_characters() -> st.SearchStrategy[str]:
    """Letters of one of many scripts, left-to-right and right-to-left, BMP and astral."""
    return st.sampled_from(sorted(_SCRIPTS)).flatmap(
        lambda script: st.characters(min_codepoint=_SCRIPTS[script][0], max_codepoint=_SCRIPTS[script][1])
    )


def tricky_characters() -> st.SearchStrategy[str]:
    """White space, zero-width, bidi and control characters, combining marks, specials."""
    return st.one_of(
        st.sampled_from(WHITESPACE),
        st.sampled_from(ZERO_WIDTH),
        st.sampled_from(BIDI_CONTROLS),
        st.sampled_from(CONTROLS),
        st.characters(categories=["Mn", "Mc", "Me"]),
        st.sampled_from(SPECIAL_CHARS),
    )


def name_pieces() -> st.SearchStrategy[str]:
    """One piece of a name: a character of any kind, an emoji sequence or a special fragment."""
    return st.one_of(
        any_characters(),
        script_characters(),
        tricky_characters(),
        st.sampled_from(EMOJI_SEQUENCES),
        st.sampled_from(SPECIAL_FRAGMENTS),
    )


def _alphabet(kind: str) -> st.SearchStrategy[str]:
    if kind == "ascii":
        return st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if kind == "bmp":
        # letters of the scripts above Latin-1 in the Basic Multilingual Plane (2-3 bytes in UTF-8)
        return st.characters(min_codepoint=0x0370, max_codepoint=0xD7A3, categories=["Lu", "Ll", "Lo"])
    if kind == "astral":
        # letters, symbols and emoji beyond U+FFFF (4 bytes in UTF-8, a surrogate pair in UTF-16)
        return st.characters(min_codepoint=0x10000, categories=["Lu", "Ll", "Lo", "So"])
    raise ValueError(f"unknown alphabet {kind!r}; known: {', '.join(LENGTH_ALPHABETS)}")


# -- names ----------------------------------------------------------------------------------


def boundary_lengths() -> st.SearchStrategy[int]:
    """One of :data:`BOUNDARY_LENGTHS`."""
    return st.sampled_from(BOUNDARY_LENGTHS)


def names_of_length(length: int, alphabet: str | None = None) -> st.SearchStrategy[str]:
    """Names of exactly ``length`` code points, from one of :data:`LENGTH_ALPHABETS` (any if None).

    Names longer than 16 repeat a short drawn pattern, so that a 16384-character name
    costs Hypothesis (and its shrinker, one server round trip per attempt) no more than a
    short one, and a failure shows a readable pattern.
    """
    if length < 1:
        raise ValueError("length must be at least 1")
    if alphabet is None:
        return st.sampled_from(LENGTH_ALPHABETS).flatmap(lambda kind: names_of_length(length, kind))
    chars = _alphabet(alphabet)
    if length <= 16:
        return st.text(chars, min_size=length, max_size=length).map(defang)
    return st.text(chars, min_size=1, max_size=16).map(_RepeatTo(length))


class _RepeatTo:
    """Repeat a pattern to exactly ``length`` code points (named, so failure reports read well)."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, pattern: str) -> str:
        return defang((pattern * (self.length // len(pattern) + 1))[: self.length])

    def __repr__(self) -> str:
        return f"repeat_to({self.length})"


def whitespace_only_names() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(WHITESPACE + ZERO_WIDTH), min_size=1, max_size=12)


def unicode_names(max_size: int = 48) -> st.SearchStrategy[str]:
    """Mixtures of every kind of character, emoji sequences and special fragments."""
    return st.lists(name_pieces(), min_size=1, max_size=max_size).map(lambda parts: defang("".join(parts)))


def special_names() -> st.SearchStrategy[str]:
    """Names made of JSON-, URL-, HTML- and SQL-special characters and fragments."""
    piece = st.one_of(st.sampled_from(SPECIAL_FRAGMENTS), st.sampled_from(SPECIAL_CHARS), st.sampled_from("abc"))
    return st.lists(piece, min_size=1, max_size=8).map(lambda parts: defang("".join(parts)))


def padded_names() -> st.SearchStrategy[str]:
    """A name with white space (or zero-width characters) before it, after it, or both."""
    edge = st.text(st.sampled_from(WHITESPACE + ZERO_WIDTH), min_size=0, max_size=4)
    core = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True), unicode_names(12))
    return st.tuples(edge, core, edge).filter(lambda t: bool(t[0] or t[2])).map(lambda t: defang(t[0] + t[1] + t[2]))


def names() -> st.SearchStrategy[str]:
    """Every kind of token name this suite sends; simplest (the empty string) first."""
    return st.one_of(
        st.just(""),
        whitespace_only_names(),
        padded_names(),
        special_names(),
        unicode_names(),
        boundary_lengths().flatmap(names_of_length),
        st.integers(min_value=1, max_value=5000).flatmap(names_of_length),
    )


# -- roles -----------------------------------------------------------------------------------


def _random_case(text: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(text), max_size=len(text))
    return flips.map(lambda fs: "".join(c.upper() if f else c for c, f in zip(text, fs, strict=True))).filter(
        lambda s: s != text
    )


def role_names(known: Iterable[str] = ()) -> st.SearchStrategy[str]:
    """Role names: predefined (plus ``known``), unknown, case-altered, with commas, spaces, Unicode."""
    predefined = tuple(dict.fromkeys((*PREDEFINED_ROLES, *known)))
    known_role = st.sampled_from(predefined)
    unknown = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True).filter(lambda r: r not in predefined)
    return st.one_of(
        known_role,
        unknown,
        known_role.flatmap(_random_case),
        st.lists(known_role, min_size=2, max_size=3).flatmap(
            lambda rs: st.sampled_from([",", ", ", " ,"]).map(lambda sep: sep.join(rs))
        ),
        st.tuples(known_role, st.sampled_from([" {}", "{} ", " {} ", "{}\t", "\u00a0{}"])).map(
            lambda t: t[1].format(t[0])
        ),
        known_role.map(lambda r: r.replace("-", " ")),
        unicode_names(16),
        st.just(""),
        whitespace_only_names(),
    ).map(defang)


def role_lists(known: Iterable[str] = ()) -> st.SearchStrategy[list[str]]:
    """Role lists: empty, one, many, with duplicates, subsets of the predefined roles."""
    known = tuple(known)
    one = role_names(known)
    predefined = tuple(dict.fromkeys((*PREDEFINED_ROLES, *known)))
    with_duplicate = st.lists(one, min_size=1, max_size=4).flatmap(
        lambda rs: st.integers(0, len(rs)).map(lambda i: [*rs[:i], rs[0], *rs[i:]])
    )
    return st.one_of(
        st.just([]),
        st.lists(one, min_size=1, max_size=1),
        st.lists(st.sampled_from(predefined), min_size=1, max_size=len(predefined), unique=True),
        st.lists(one, min_size=2, max_size=12),
        with_duplicate,
    )


# -- what was generated, for observations --------------------------------------------------

_SCRIPT_NAMES = ("LATIN", "GREEK", "CYRILLIC", "HEBREW", "ARABIC", "CJK", "HANGUL", "DEVANAGARI", "THAI")


def name_traits(name: str) -> list[str]:
    """Short labels for what makes a name interesting, e.g. ``["leading-space", "rtl"]``."""
    if name == "":
        return ["empty"]
    blank = set(WHITESPACE + ZERO_WIDTH)
    if all(c in blank for c in name):
        return ["whitespace-only"]
    traits = []
    if name[0] in blank:
        traits.append("leading-space")
    if name[-1] in blank:
        traits.append("trailing-space")
    if any(c in CONTROLS for c in name):
        traits.append("control")
    if any(c in ZERO_WIDTH for c in name):
        traits.append("zero-width")
    if any(c in BIDI_CONTROLS or unicodedata.bidirectional(c) in ("R", "AL") for c in name):
        traits.append("rtl")
    if any(unicodedata.combining(c) for c in name):
        traits.append("combining")
    if any(ord(c) > 0xFFFF for c in name):
        traits.append("astral")
    elif any(ord(c) > 0x7F for c in name):
        traits.append("non-ascii")
    if any(c in SPECIAL_CHARS for c in name):
        traits.append("special")
    if unicodedata.normalize("NFC", name) != name:
        traits.append("not-nfc")
    traits.append(length_band(len(name)))
    return traits


def length_band(length: int) -> str:
    """The band of a name length, by the boundaries the suite probes: ``len<=64``, ``len<=256``, …"""
    for limit in (64, 256, 1024, 4096):
        if length <= limit:
            return f"len<={limit}"
    return "len>4096"


def role_traits(roles: Sequence[str], known: Iterable[str] = ()) -> list[str]:
    """Short labels for a role list, e.g. ``["duplicates", "unknown", "comma"]``."""
    if not roles:
        return ["empty-list"]
    predefined = set(PREDEFINED_ROLES) | set(known)
    traits = ["one" if len(roles) == 1 else "many"]
    if len(set(roles)) != len(roles):
        traits.append("duplicates")
    if any(r in predefined for r in roles):
        traits.append("predefined")
    if any(r not in predefined for r in roles):
        traits.append("unknown")
    if any(r.lower() in predefined and r not in predefined for r in roles):
        traits.append("case-altered")
    if any("," in r for r in roles):
        traits.append("comma")
    if any(r != r.strip() or " " in r for r in roles):
        traits.append("space")
    if any(r.strip() == "" for r in roles):
        traits.append("blank-role")
    if any(any(ord(c) > 0x7F for c in r) for r in roles):
        traits.append("non-ascii")
    return traits


# -- expiries and the model's name suffixes (issue 23) ------------------------------------------

#: The largest value of the API's int64 expiryDate (epoch ms): some 292 million years ahead.
INT64_MAX = 2**63 - 1
#: 9999-12-31T00:00:00Z: the latest date the CLI's --expiration yyyy-MM-dd can name (sent as that day's 00:00 UTC).
CLI_LAST_DATE_MS = 253_402_214_400_000
#: 2^53 + 1 ms: the first integer a JSON number read as a double cannot hold exactly.
DOUBLE_EXACT_LIMIT = 2**53 + 1
#: Expiry offsets (ms from the server's "now") that stay ahead for the whole of a short sequence.
MIN_EXPIRY_AHEAD_MS = 600_000
#: The expiries that are always tried, not left to chance: the far edge of each representation.
CLASSIC_FAR_EXPIRIES: tuple[int, ...] = (INT64_MAX, CLI_LAST_DATE_MS, DOUBLE_EXACT_LIMIT, 2**31 * 1000, 2**32 * 1000)


def expiries_ahead(now_ms: int) -> st.SearchStrategy[int]:
    """Absolute expiryDates (epoch ms) over the whole range ahead: from ``MIN_EXPIRY_AHEAD_MS`` past ``now_ms``
    to :data:`INT64_MAX`, each order of magnitude as likely as the next, the classic edges often."""
    low = now_ms + MIN_EXPIRY_AHEAD_MS
    magnitudes = st.integers(len(str(low)), len(str(INT64_MAX))).flatmap(
        lambda digits: st.integers(max(low, 10 ** (digits - 1)), min(INT64_MAX, 10**digits - 1))
    )
    classic = st.sampled_from([e for e in CLASSIC_FAR_EXPIRIES if e > low])
    return st.one_of(classic, magnitudes, st.integers(low, low + 400 * 86_400_000))


#: Suffixes that test how names are stored: composed and decomposed forms of one text (NFC and NFD
#: differ), several scripts, characters of 2, 3 and 4 bytes in UTF-8, a combining sequence that has
#: no composed form, right-to-left text. Each must be stored exactly as sent, or refused.
CLASSIC_NAME_SUFFIXES: tuple[str, ...] = (
    "caf\u00e9",  # é composed (NFC)
    "cafe\u0301",  # e + combining acute (NFD): the same text to a reader, other code points
    "\u1112\u1161\u11ab",  # Hangul 한 as conjoining jamo (NFD); composed it is U+D55C
    "\ud55c\uae00",  # 한글 composed
    "\u0391\u03b8\u03ae\u03bd\u03b1",  # Greek
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (right to left)
    "\u0915\u094d\u0937",  # Devanagari conjunct (virama)
    "q\u0307\u0323",  # q with dot above and dot below: no composed form, marks in non-canonical order
    "\U0001f9d1\u200d\U0001f4bb",  # an emoji ZWJ sequence (4-byte characters)
    "\u00c5ngstr\u00f6m \u212b",  # Å composed and the Angstrom sign, which NFC maps to it
)


def name_suffixes() -> st.SearchStrategy[str]:
    """What follows the run's prefix in a model token's name: the classic cases often, any mixture else."""
    return st.one_of(st.sampled_from(CLASSIC_NAME_SUFFIXES), unicode_names(6))
