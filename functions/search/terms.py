"""What a person typed in the search box, as terms both full-text engines take safely.

Nothing the user types reaches the engine as syntax: the text is cut into words (runs of letters and
digits, which is what both indexes hold) and "quoted phrases"; every word must appear (AND), a phrase
as consecutive words, and a word of 3 letters or more ending in `*` may be the start of a longer one
(`deplo*`). Any other `"`, `*`, `NEAR`, `OR`, `col:term` or an unbalanced `(` are only punctuation or
plain words; text with no word at all is a 400 naming `q`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.web.errors import bad_query

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
MIN_PREFIX = 3  # a shorter word* is matched whole: "a*" would be most of the index
WORD = re.compile(r"[^\W_]+")
WORD_AND_STAR = re.compile(r"([^\W_]+)(\*?)")
PHRASE_OR_WORDS = re.compile(r'"([^"]*)"|([^"]+)')


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # lower case; more than one: a phrase
    prefix: bool = False  # the word may continue (`deplo*`)


def parse_terms(q: str | None) -> list[Term]:
    if q is None or not q.strip():
        raise bad_query("q", "q is required: the words to search for")
    if len(q) > MAX_QUERY_CHARS:
        raise bad_query("q", f"q must be at most {MAX_QUERY_CHARS} characters")
    terms: list[Term] = []
    for phrase, loose in PHRASE_OR_WORDS.findall(q):
        if phrase:
            words = tuple(word.lower() for word in WORD.findall(phrase))
            if words:
                terms.append(Term(words))
        else:
            terms.extend(Term((word.lower(),), prefix=bool(star) and len(word) >= MIN_PREFIX)
                         for word, star in WORD_AND_STAR.findall(loose))
    if not terms:
        raise bad_query("q", "q has no word to search for: give letters or digits")
    if len(terms) > MAX_TERMS:
        raise bad_query("q", f"q may hold at most {MAX_TERMS} words or phrases")
    return terms


def fts5_query(terms: list[Term]) -> str:
    """SQLite FTS5: `"word" "a phrase" "pre"*` (words are letters and digits only, so quoting is safe)."""
    return " ".join(f'"{" ".join(term.words)}"' + ("*" if term.prefix else "") for term in terms)


def tsquery(terms: list[Term]) -> str:
    """PostgreSQL to_tsquery('simple', ...): `'word' & 'a' <-> 'phrase' & 'pre':*`."""
    return " & ".join(" <-> ".join(f"'{word}'" for word in term.words) + (":*" if term.prefix else "")
                      for term in terms)


def marker(terms: list[Term]) -> re.Pattern[str]:
    """Finds the terms in lower-cased text, as the indexes see words: whole words (or a word's start,
    for a prefix), phrases across any non-word characters between their words. The pattern starts
    with the literal word, which `re` finds fast; that a match starts a word is checked by `matches`."""
    patterns = []
    for term in terms:
        words = r"[\W_]+".join(re.escape(word) for word in term.words)
        patterns.append(words + ("" if term.prefix else r"(?![^\W_])"))
    return re.compile("|".join(patterns))


def matches(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """Where the terms are in `text`: (start, end) of each, in order."""
    folded = text.lower()
    if len(folded) != len(text):  # a character that lower-cases to two: fall back to the slow, sure way
        folded, pattern = text, re.compile(pattern.pattern, re.IGNORECASE)
    return [found.span() for found in pattern.finditer(folded)
            if found.start() == 0 or not WORD.match(folded, found.start() - 1)]


SNIPPET_CHARS = 160


def snippet(text: str, pattern: re.Pattern[str]) -> list[dict]:
    """The part of `text` around its first match, as segments: `[{"text": ..., "match": bool}, ...]`."""
    found = matches(pattern, text)
    first = found[0][0] if found else 0
    start = max(0, first - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    if start > 0:  # begin at a word
        space = text.find(" ", start, first if found else end)
        start = space + 1 if space != -1 else start
    segments: list[dict] = [{"text": "…", "match": False}] if start > 0 else []
    position = start
    for match_start, match_end in found:
        if match_start < start or match_end > end:
            continue
        if match_start > position:
            segments.append({"text": text[position:match_start], "match": False})
        segments.append({"text": text[match_start:match_end], "match": True})
        position = match_end
    if position < end:
        segments.append({"text": text[position:end], "match": False})
    if end < len(text):
        segments.append({"text": "…", "match": False})
    return segments
