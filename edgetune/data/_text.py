"""The character vocabulary, transcript normalisation and word error rate.

Every transcript that reaches a model is spelled with :data:`VOCABULARY` only: lowercase
``a``-``z``, space and apostrophe, with index 0 the CTC blank. :func:`normalize_text` maps
written English onto it:

- Unicode is decomposed (NFKD) and accents dropped: ``café`` -> ``cafe``; curly quotes
  become ``'``.
- Numbers are spoken as words. A run of digits of up to six digits without a leading zero is
  read as a cardinal (``42`` -> ``forty two``, ``2024`` -> ``two thousand twenty four``);
  longer runs or runs with a leading zero are read digit by digit, the way phone numbers and
  codes are said (``0415`` -> ``zero four one five``). ``3.5`` -> ``three point five``,
  ``7:30`` -> ``seven thirty``, ``1st`` -> ``first``.
- ``%`` ``&`` ``+`` ``@`` become ``percent`` ``and`` ``plus`` ``at``; every other punctuation
  mark becomes a space (so ``twenty-one`` -> ``twenty one``).
- An apostrophe is kept only inside a word (``don't``), not as a quote mark.
- Whitespace is collapsed; the result has no leading or trailing space.

Characters left after these steps that are not in the vocabulary (``ß``, ``ø``, CJK, ...)
are reported by :func:`unknown_chars` and dropped by :func:`normalize_text`.

:func:`word_error_rate` and :func:`group_wer` score transcripts (jiwer, imported on first use);
training, the study and ``edgetune bench --wer`` all score with them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from edgetune.errors import DataError

BLANK = "<blank>"
VOCABULARY: list[str] = [BLANK, " ", *"abcdefghijklmnopqrstuvwxyz", "'"]
BLANK_ID = 0
_INDEX = {ch: i for i, ch in enumerate(VOCABULARY) if i != BLANK_ID}

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"}


def number_to_words(n: int) -> str:
    """Say a non-negative integer below one billion in words: 1234 -> 'one thousand two hundred thirty four'."""
    if n < 0 or n >= 10**9:
        raise ValueError(f"number_to_words needs 0 <= n < 1e9, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for size, word in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return number_to_words(n // size) + f" {word}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    """1 -> 'first', 22 -> 'twenty second', 40 -> 'fortieth'."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return " ".join(words[:-1] + [last])


def _digits_to_words(digits: str) -> str:
    if len(digits) > 6 or (len(digits) > 1 and digits[0] == "0"):
        return " ".join(_ONES[int(d)] for d in digits)
    return number_to_words(int(digits))


def _spell_numbers(text: str) -> str:
    text = re.sub(r"(\d+)(?:st|nd|rd|th)\b", lambda m: " " + ordinal_words(int(m.group(1))) + " "
                  if len(m.group(1)) <= 6 else m.group(0), text)
    text = re.sub(r"(\d+)\.(\d+)", lambda m: f" {_digits_to_words(m.group(1))} point "
                  + " ".join(_ONES[int(d)] for d in m.group(2)) + " ", text)
    text = re.sub(r"(\d{1,2}):(\d\d)\b", lambda m: f" {number_to_words(int(m.group(1)))} "
                  + ("" if m.group(2) == "00" else ("oh " if m.group(2)[0] == "0" else "")
                     + number_to_words(int(m.group(2)))) + " ", text)
    return re.sub(r"\d+", lambda m: " " + _digits_to_words(m.group(0)) + " ", text)


def _normalize_keep_unknown(text: str) -> str:
    """All normalisation steps except dropping out-of-vocabulary characters."""
    text = "".join(_QUOTES.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _spell_numbers(text.lower())
    out = []
    for ch in text:
        if ch in _SYMBOLS:
            out.append(_SYMBOLS[ch])
        elif ch.isspace() or (unicodedata.category(ch)[0] in "PSZC" and ch != "'"):
            out.append(" ")  # punctuation, symbols, separators and control chars split words
        else:
            out.append(ch)
    text = "".join(out)
    text = re.sub(r"(?<![^\W_])'|'(?![^\W_])", " ", text)  # drop apostrophes not inside a word
    return " ".join(text.split())


def unknown_chars(text: str) -> set[str]:
    """The characters of ``text`` that are still outside the vocabulary after normalisation."""
    return {ch for ch in _normalize_keep_unknown(text) if ch not in _INDEX}


def count_unknown_chars(texts: Iterable[str]) -> Counter[str]:
    """How often each out-of-vocabulary character occurs across ``texts`` (after normalisation)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(ch for ch in _normalize_keep_unknown(text) if ch not in _INDEX)
    return counts


def normalize_text(text: str) -> str:
    """Map written English onto the vocabulary (rules in the module docstring); unknown characters are dropped."""
    kept = "".join(ch for ch in _normalize_keep_unknown(text) if ch in _INDEX)
    return " ".join(kept.split())


def encode(text: str) -> list[int]:
    """Vocabulary ids of an already normalised transcript; raises DataError on a character outside it."""
    try:
        return [_INDEX[ch] for ch in text]
    except KeyError as exc:
        raise DataError(
            f"transcript {text!r} has character {exc.args[0]!r} outside the vocabulary "
            f"{''.join(VOCABULARY[1:])!r}; pass it through normalize_text() first"
        ) from None


def decode(ids: Iterable[int]) -> str:
    """Text of vocabulary ids; blanks are skipped (no CTC collapsing: see a decoder for that)."""
    out = []
    for i in ids:
        i = int(i)
        if i == BLANK_ID:
            continue
        if not 0 < i < len(VOCABULARY):
            raise DataError(f"id {i} is outside the vocabulary (0..{len(VOCABULARY) - 1})")
        out.append(VOCABULARY[i])
    return "".join(out)


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER (jiwer); an empty hypothesis counts as all deletions."""
    import jiwer

    if not refs:
        return float("nan")
    return float(jiwer.wer(list(refs), [h if h.strip() else "" for h in hyps]))


def group_wer(refs: Sequence[str], hyps: Sequence[str], groups: Sequence[str]) -> dict[str, float]:
    """WER per group (e.g. accent); utterances without a group are left out."""
    by: dict[str, tuple[list[str], list[str]]] = {}
    for r, h, g in zip(refs, hyps, groups):
        if g:
            by.setdefault(g, ([], []))[0].append(r)
            by[g][1].append(h)
    return {g: word_error_rate(r, h) for g, (r, h) in sorted(by.items())}
