"""What a person typed in the search box, as terms both full-text engines take safely.

Nothing the user types reaches the engine as syntax: the text is cut into words (runs of letters and
digits, which is what both indexes hold) and "quoted phrases"; every word must appear (AND), a phrase
as consecutive words, and the last word may be the start of a longer one (search as you type). So
`"`, `*`, `NEAR`, `OR`, `col:term` or an unbalanced `(` are only punctuation or plain words; text with
no word at all is a 400 naming `q`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.web.errors import bad_query

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
WORD = re.compile(r"[^\W_]+")
PHRASE_OR_WORDS = re.compile(r'"([^"]*)"|([^"]+)')


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # lower case; more than one: a phrase
    prefix: bool = False  # the last word may continue


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
            terms.extend(Term((word.lower(),)) for word in WORD.findall(loose))
    if not terms:
        raise bad_query("q", "q has no word to search for: give letters or digits")
    if len(terms) > MAX_TERMS:
        raise bad_query("q", f"q may hold at most {MAX_TERMS} words or phrases")
    last_quoted = q.rstrip().endswith('"')
    if len(terms[-1].words) == 1 and not last_quoted:
        terms[-1] = Term(terms[-1].words, prefix=True)
    return terms


def fts5_query(terms: list[Term]) -> str:
    """SQLite FTS5: `"word" "a phrase" "pre"*` (words are letters and digits only, so quoting is safe)."""
    return " ".join(f'"{" ".join(term.words)}"' + ("*" if term.prefix else "") for term in terms)


def tsquery(terms: list[Term]) -> str:
    """PostgreSQL to_tsquery('simple', ...): `'word' & 'a' <-> 'phrase' & 'pre':*`."""
    return " & ".join(" <-> ".join(f"'{word}'" for word in term.words) + (":*" if term.prefix else "")
                      for term in terms)


def marker(terms: list[Term]) -> re.Pattern[str]:
    """Finds the terms in a document's text, as the indexes see words: whole words (or a word's start,
    for a prefix), phrases across any non-word characters between their words."""
    patterns = []
    for term in terms:
        words = r"[\W_]+".join(re.escape(word) for word in term.words)
        patterns.append(rf"(?<![^\W_]){words}" + ("" if term.prefix else r"(?![^\W_])"))
    return re.compile("|".join(patterns), re.IGNORECASE)


SNIPPET_CHARS = 160


def snippet(text: str, terms: list[Term]) -> list[dict]:
    """The part of `text` around its first match, as segments: `[{"text": ..., "match": bool}, ...]`."""
    pattern = marker(terms)
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    if start > 0:  # begin at a word
        space = text.find(" ", start, first.start() if first else end)
        start = space + 1 if space != -1 else start
    window = text[start:end]
    segments: list[dict] = []
    position = 0
    for found in pattern.finditer(window):
        if found.start() > position:
            segments.append({"text": window[position:found.start()], "match": False})
        segments.append({"text": found.group(), "match": True})
        position = found.end()
    if position < len(window):
        segments.append({"text": window[position:], "match": False})
    if start > 0:
        segments.insert(0, {"text": "…", "match": False})
    if end < len(text):
        segments.append({"text": "…", "match": False})
    return segments
