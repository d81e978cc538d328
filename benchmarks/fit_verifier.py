"""Build labelled pairs and (re)fit the pair verifier's models (`curate/models/verify_models/*.json`).

Fitting data, never the pairs any evaluation scores:

- **the testbed's calibration split** (decontam.testbed: HumanEval items 100-163, MMLU
  sociology / US-history rows past 100) with every published rephrasing of those items
  (Python, C, JS, Rust, Go, Java; English and Chinese) as positives, and **nearest-neighbour
  negatives**: each calibration item's closest rephrasings of *other* items, by either
  embedding channel, among all ~2,200 published rephrasings (real near misses; random
  mismatched pairs of the paper's protocol are added too, they are easy);
- for code items, the docstring's description as an instruction ("Write a function that
  ...") as a positive, another item's as a negative;
- GSM8K rephrasings (the first 660; no evaluation here scores GSM8K): a copy with typos and
  a partial paste as positives, the same problem with other numbers (a template twin) and
  the nearest other problem as negatives;
- generated requests from this script's own templates (`FIT_TEMPLATES`, written for fitting
  and distinct from `tests/data/verify_hard.jsonl`'s): the same values reworded or
  translated as positives, the same template with other values as negatives;
- **the decontam protocols on the calibration items** (`protocol_pairs`, items 100 onwards):
  what a top-5 search per channel hands the verifier there (cross-language code near misses
  included), and CodeAlpaca's neighbours of HumanEval items 100-163 (GPT-4: all False; real
  neighbours from a real instruction set; eval_verifier scores items 0-99 apart);
- near copies (typos, commas dropped, case) of calibration texts of every length, passages
  and code included (`noisy_copy_pairs`);
- for the near and semantic models only (added after the IDF table is fitted, so neither
  `idf.json` nor `decontam.json` changes with them): this script's own chat templates
  (`DEDUP_TEMPLATES`): a request reworded and mistyped as positives, another task on the same
  subject ("a sonnet about X" / "a news article about X", "... its volume?" / "... its
  surface area?") and other values as negatives; and the calibration split's English
  rephrasings with 1-2 typos as positives (`typo_rephrasing_pairs`); word swaps and qualifier
  twins (`swap_twin_pairs`, `real_word_swap_pairs`); the template pairs with their numbers
  spelled out, label kept (`spelled_number_pairs`); the template pairs with their durations
  written another way ("30 minutes" / "half an hour"), label kept, and clock times in digits
  and in words (`unit_pairs`, `CLOCK_TEMPLATES`); a question about one exception reworded as
  positives, about another exception as negatives (`error_twin_pairs`). The near and semantic
  models read `value_diff` (numbers as values) and `qty_diff` (durations, clock times and
  units as quantities) instead of `num_diff` (`DEDUP_FEATURES`).
- for the decontam model only (likewise after the IDF fit): generic frames (`DECONTAM_FRAMES`), a
  benchmark-style request against short chat requests in the same frame wording on another
  subject, as negatives ("Explain the difference between a process and a thread." is not
  MT-bench's exothermic/endothermic item). The decontam model reads `DECONTAM_FEATURES`.

The `gap_other` feature (how much closer the training text is to another benchmark item) is
computed with the negative's own source item masked: otherwise every protocol negative is
"closer to another item" by construction, and the model learns nothing it can use on a
real corpus.

Models: gradient-boosted trees (scikit-learn), one per task, exported as JSON trees; the
decision cut is the F1-maximising cut on 5-fold out-of-fold probabilities, folds grouped by
the anchor text (all pairs of one benchmark item or request in one fold), the band is where
out-of-fold precision (above) or negative predictive value (below) drops under .98; a task
in `MIN_PRECISION` has its cut raised (never lowered) to that precision. Deterministic
(fixed seeds, sorted inputs). On held-out data logistic regression did much worse
(docs/decontam.md).

    .venv/bin/python benchmarks/fit_verifier.py [--testbed ../shared/testbed] [--dump pairs.jsonl] [--tasks near,semantic]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.models.verify import FEATURES, MODEL_DIR, TASKS, VerifierModel, model_matrix, pair_features  # noqa: E402
from curate.models.verify import _TENS_WORDS, _UNIT_WORDS  # noqa: E402

TESTBED = REPO.parent / "shared" / "testbed"
CACHE = REPO / ".cache" / "verify"

# Fitting templates: (phrasing A, phrasing B, {slot: values}); B rewords A. Translated
# phrasings (es/de/fr/zh) of some are positives across languages.
FIT_TEMPLATES = [
    ("Set a timer for {n} minutes.", "Can you start a {n}-minute timer?", {"n": ["5", "10", "15", "20", "30", "45"]}),
    ("How many calories are in {n} grams of {food}?", "What's the calorie count of {n}g of {food}?",
     {"n": ["50", "100", "150", "200", "250"], "food": ["rice", "oats", "chicken breast", "almonds", "banana"]}),
    ("Plan a {n}-day trip to {city} for a family with two kids.", "I need a {n} day itinerary in {city}, travelling with my two children.",
     {"n": ["2", "3", "4", "5", "7"], "city": ["Lisbon", "Kyoto", "Vienna", "Chicago", "Cape Town", "Prague"]}),
    ("If I save {n} dollars a month at {r}% interest, how much will I have after {y} years?",
     "Saving ${n} monthly with {r} percent annual interest, what's my balance in {y} years?",
     {"n": ["200", "350", "500", "1000"], "r": ["3", "4", "5", "7"], "y": ["5", "10", "20"]}),
    ("Write a {lang} function that returns the {k}th largest element of a list.",
     "In {lang}, implement a function giving the {k}-th biggest value in an array.",
     {"lang": ["Python", "Java", "Rust", "Go"], "k": ["2", "3", "5"]}),
    ("Explain the causes of the {war}.", "What led to the {war}? Give the main causes.",
     {"war": ["Crimean War", "Thirty Years' War", "War of 1812", "Boer War", "Peloponnesian War"]}),
    ("Translate 'good morning, how are you?' into {tl}.", "How do you say 'good morning, how are you?' in {tl}?",
     {"tl": ["French", "German", "Japanese", "Portuguese", "Korean"]}),
    ("Give me a recipe for {dish} that serves {n} people.", "I want to cook {dish} for {n}; what's a good recipe?",
     {"dish": ["lasagna", "paella", "chili", "risotto", "pad thai"], "n": ["2", "4", "6", "8"]}),
    ("Convert {n} degrees Fahrenheit to Celsius.", "What is {n} °F in Celsius?", {"n": ["32", "50", "72", "98", "212", "-4"]}),
    ("Summarise the plot of {book} in {n} sentences.", "In {n} sentences, what happens in {book}?",
     {"book": ["Moby-Dick", "Pride and Prejudice", "Dune", "Beloved", "The Trial"], "n": ["3", "5", "10"]}),
    ("Write a SQL query that finds customers who ordered more than {n} times in {y}.",
     "SQL: list the customers with over {n} orders during {y}.", {"n": ["3", "5", "10", "20"], "y": ["2019", "2021", "2023"]}),
    ("What is the population of {city}?", "How many people live in {city}?",
     {"city": ["Toronto", "Lagos", "Osaka", "Munich", "Lima", "Hanoi"]}),
    ("Write a cover letter for a {job} position at {co}.", "Help me draft a cover letter applying to be a {job} at {co}.",
     {"job": ["data analyst", "nurse", "product manager", "teacher"], "co": ["Siemens", "Spotify", "Unilever", "Airbus"]}),
    ("My {pet} is {n} years old and stopped eating. What should I do?",
     "What should I do, my {n}-year-old {pet} won't eat anything?", {"pet": ["cat", "dog", "rabbit"], "n": ["2", "8", "12", "15"]}),
    ("Compare {a} and {b} for a beginner programmer.", "For someone new to coding, {a} or {b}: which is better and why?",
     {"a": ["Python", "JavaScript", "C#"], "b": ["Ruby", "Go", "Kotlin", "Swift"]}),
    ("Calculate the area of a circle with a radius of {n} cm.", "What's the area of a circle whose radius is {n} centimetres?",
     {"n": ["3", "4.5", "7", "10", "12"]}),
]
# Hand-written translations of phrasing A (same slots), for cross-language positives.
FIT_TRANSLATIONS = {
    0: ["Pon un temporizador de {n} minutos.", "Stelle einen Timer auf {n} Minuten.", "Mets un minuteur de {n} minutes."],
    1: ["¿Cuántas calorías hay en {n} gramos de {food}?", "Wie viele Kalorien haben {n} Gramm {food}?"],
    5: ["Explica las causas de la {war}.", "解释{war}的原因。"],
    8: ["Convierte {n} grados Fahrenheit a Celsius.", "Rechne {n} Grad Fahrenheit in Celsius um.", "将{n}华氏度转换为摄氏度。"],
    11: ["¿Cuál es la población de {city}?", "Quelle est la population de {city} ?", "{city}有多少人口？"],
    15: ["Calcula el área de un círculo con un radio de {n} cm.", "Calcule l'aire d'un cercle de rayon {n} cm.", "计算半径为{n}厘米的圆的面积。"],
}


# Dedup fitting templates (near/semantic only; written for fitting, distinct from every
# evaluation's texts): (request A, A reworded, [other requests on the same subject], slots).
# A / its rewording (also with typos) are the same request; A against another task on the
# same subject ("a poem about X" / "an essay about X", "... its volume?" / "... its surface
# area?") or with other values is not. Chains of such look-alikes merged distinct requests.
DEDUP_TEMPLATES = [
    ("Write a sonnet about {topic}.", "Compose a fourteen-line sonnet on the theme of {topic}.",
     ["Write a news article about {topic}.", "Write a sonnet about {topic} in the style of a pirate.",
      "Give me ten song titles about {topic}."],
     {"topic": ["lighthouses", "the first snowfall", "a broken umbrella", "city buses", "old libraries"]}),
    ("What are the symptoms of {ill}?", "How can I tell if I have {ill}? What signs should I look for?",
     ["How is {ill} treated?", "Is {ill} contagious?", "What is the history of {ill} research?"],
     {"ill": ["anemia", "shingles", "gout", "tonsillitis", "vertigo"]}),
    ("A cube has an edge of {n} cm. What is its volume?", "Find the volume of a cube whose edges are {n} centimeters long.",
     ["A cube has an edge of {n} cm. What is its surface area?", "A cube has an edge of {n} cm. How long is its space diagonal?"],
     {"n": ["3", "4", "6", "8", "11"]}),
    ("Who designed the {bld}?", "Which architect was responsible for the {bld}?",
     ["When was the {bld} built?", "How tall is the {bld}?", "Can tourists go inside the {bld}?"],
     {"bld": ["Sydney Opera House", "Guggenheim Museum Bilbao", "Chrysler Building", "Sagrada Familia", "Lotus Temple"]}),
    ("Write a {lang} script that renames every file in a folder to lowercase.",
     "I need a {lang} program to make all filenames in a directory lower-case.",
     ["Write a {lang} script that deletes every empty file in a folder.", "Explain how file permissions work in {lang}.",
      "Write a {lang} script that renames every file in a folder to lowercase, and write unit tests for it."],
     {"lang": ["Python", "Bash", "PowerShell", "Perl", "Ruby"]}),
    ("A car travels {d} km in {h} hours. What is its average speed?",
     "If a car covers {d} kilometres in {h} hours, how fast did it go on average?",
     ["A car travels {d} km in {h} hours. How much fuel did it use at 6 litres per 100 km?",
      "A car travels {d} km in {h} hours. How long would the trip take at 100 km/h?"],
     {"d": ["120", "240", "315", "450"], "h": ["2", "3", "5"]}),
    ("Summarize the main arguments of {work}.", "What are the key ideas that {work} argues for? Give a summary.",
     ["Who wrote {work} and when?", "Write a critical review of {work}.", "How was {work} received when it came out?"],
     {"work": ["The Wealth of Nations", "Silent Spring", "The Social Contract", "On Liberty", "Leviathan"]}),
    ("Give me a {n}-day workout plan to build upper body strength.",
     "Can you make a {n} day exercise routine focused on getting a stronger upper body?",
     ["Give me a {n}-day meal plan to build upper body strength.", "Give me a {n}-day workout plan to improve my flexibility."],
     {"n": ["3", "4", "5", "6"]}),
    ("What is the boiling point of {chem}?", "At what temperature does {chem} boil?",
     ["What is the melting point of {chem}?", "Is {chem} toxic to humans?", "What is the chemical formula of {chem}?"],
     {"chem": ["ethanol", "acetone", "benzene", "glycerol", "toluene"]}),
    ("Translate this sentence into {tl}: 'The museum opens at nine.'", "How would you say 'The museum opens at nine.' in {tl}?",
     ["Translate this sentence into {tl}: 'The museum closes at six.'", "Teach me how to tell the time in {tl}."],
     {"tl": ["Italian", "Dutch", "Swedish", "Polish", "Turkish"]}),
    ("Explain how a {dev} works.", "How does a {dev} actually work? Explain it simply.",
     ["What is the history of the {dev}?", "How do I repair a broken {dev}?", "Which {dev} should I buy?"],
     {"dev": ["heat pump", "jet engine", "refrigerator", "smoke detector", "microwave oven"]}),
    ("Write a SQL query that returns the {k} most expensive products in each category.",
     "SQL: for every category, list its top {k} products by price.",
     ["Write a SQL query that returns the {k} cheapest products in each category.",
      "Write a SQL query that counts the products in each category."],
     {"k": ["2", "3", "5", "10"]}),
    ("What are the pros and cons of {x}?", "List the advantages and disadvantages of {x}.",
     ["How do I get started with {x}?", "What does {x} cost per year?", "Write a persuasive essay against {x}."],
     {"x": ["solar panels", "remote work", "electric scooters", "homeschooling", "a standing desk"]}),
    ("My {plant} has yellow leaves. What am I doing wrong?", "Why are the leaves of my {plant} turning yellow?",
     ["How often should I water my {plant}?", "How do I repot my {plant}?"],
     {"plant": ["monstera", "basil plant", "fiddle leaf fig", "snake plant", "lemon tree"]}),
    ("Who won the {event}?", "Which team was the winner of the {event}?",
     ["Where was the {event} held?", "Who was the top scorer of the {event}?"],
     {"event": ["1998 FIFA World Cup", "2011 Rugby World Cup", "2004 European Championship", "1983 Cricket World Cup"]}),
    ("Define {term}.", "What does {term} mean?",
     ["Give an example of {term}.", "Who coined the term {term}?", "Define {other}."],
     {"term": ["opportunity cost", "cognitive dissonance", "photosynthetic efficiency", "social mobility", "inflation"],
      "other": ["moral hazard"]}),
]


# Word-swap twins (dedup only; written for fitting, distinct from every evaluation's texts):
# one request, one word swapped for another real word, often one spelled alike ("inflation" /
# "deflation", "hotel" / "hostel"): a different request, while a typo of the same word is not.
SWAP_TEMPLATES = [
    ("Sort this array of integers in {w} order using merge sort.", [("ascending", "descending")]),
    ("What is the {w} temperature ever recorded in Antarctica?", [("highest", "lowest"), ("maximum", "minimum")]),
    ("How do I {w} a zip archive with a password on the command line?", [("encrypt", "decrypt"), ("create", "extract")]),
    ("Write a Python script that {w}s a CSV file into a SQLite table.", [("import", "export"), ("load", "append")]),
    ("What was the {w} rate in Argentina last year?", [("inflation", "deflation"), ("birth", "death")]),
    ("Find me a cheap {w} near the train station in Ghent.", [("hotel", "hostel"), ("bakery", "brewery")]),
    ("Is it better to {w} potatoes before roasting them?", [("boil", "bake"), ("peel", "slice")]),
    ("Explain how {w} memory works in a computer.", [("internal", "external"), ("virtual", "shared")]),
    ("Compute the {w} radius of a torus with these dimensions.", [("inner", "outer")]),
    ("Write a fable about a {w} who lives in a lighthouse.", [("mouse", "horse"), ("cat", "rat")]),
    ("What is the average salary of a {w} nurse in Canada?", [("male", "female"), ("night", "day")]),
    ("Which trains go from the {w} station to the airport?", [("east", "west"), ("north", "south")]),
    ("Draft an email asking my bank to cancel a {w} card payment.", [("debit", "credit")]),
    ("How do I get the {w} word of a sentence in JavaScript?", [("first", "last"), ("longest", "shortest")]),
    ("What should I wear for a {w} interview at a law firm?", [("video", "phone"), ("second", "final")]),
    ("Convert this paragraph to {w}case letters in Excel.", [("upper", "lower")]),
    ("Write a SQL query for the total {w} per customer in 2023.", [("revenue", "refunds"), ("orders", "returns")]),
    ("Recommend a board game for a {w} evening with friends.", [("quiet", "quick"), ("rainy", "summer")]),
]

# Qualifier twins: a request and the same request with a qualifier that changes what is asked.
QUALIFIER_TWINS = [
    ("Reverse a string in Go.", "Reverse a string in Go without allocating a new one."),
    ("How do I install Docker on Debian?", "How do I install Docker on Debian without root access?"),
    ("Plan a two-day trip to Lyon.", "Plan a two-day trip to Lyon and Annecy."),
    ("Explain recursion to a beginner.", "Explain recursion and tail calls to a beginner."),
    ("Write a function that merges two sorted arrays.", "Write a function that merges two sorted arrays in place."),
    ("How can I remove duplicate rows from a pandas DataFrame?",
     "How can I remove duplicate rows from a pandas DataFrame but keep the last one?"),
    ("Give me a recipe for banana bread.", "Give me a recipe for vegan banana bread."),
    ("Summarize the plot of Macbeth.", "Summarize the plot of Macbeth scene by scene."),
    ("Resize an image with ImageMagick.", "Resize an image with ImageMagick and keep its aspect ratio."),
    ("List the planets of the solar system.", "List the planets of the solar system with their moons."),
    ("How do I rename a branch in git?", "How do I rename a remote branch in git?"),
    ("Write a cover letter for a barista job.", "Write a cover letter for a barista job with no experience."),
]


def swap_twin_pairs(*, seed: int = 31) -> list[dict]:
    """Pairs for the near and semantic models: `SWAP_TEMPLATES` filled with either word of a pair
    and `QUALIFIER_TWINS` as negatives; each request against a copy with typos (adjacent
    letters swapped, dropped or doubled) as a positive."""
    rng = random.Random(seed)
    src = {"src": "dedup_template"}
    out = []
    for t, swaps in SWAP_TEMPLATES:
        for w1, w2 in swaps:
            a, b = t.format(w=w1), t.format(w=w2)
            out.append({**src, "a": a, "b": b, "label": False, "kind": "word_swap"})
            out.append({**src, "a": b, "b": typo(a, rng, k=rng.randint(1, 2)), "label": False, "kind": "word_swap"})
            out.append({**src, "a": a, "b": typo(a, rng, k=rng.randint(1, 2)), "label": True, "kind": "typo"})
            out.append({**src, "a": b, "b": typo(b, rng, k=rng.randint(1, 2)), "label": True, "kind": "typo"})
    for a, b in QUALIFIER_TWINS:
        out.append({**src, "a": a, "b": b, "label": False, "kind": "qualifier"})
        out.append({**src, "a": b, "b": typo(a, rng, k=1), "label": False, "kind": "qualifier"})
        out.append({**src, "a": b, "b": typo(b, rng, k=rng.randint(1, 2)), "label": True, "kind": "typo"})
    return out


def real_word_swap_pairs(pairs: list[dict], *, seed: int = 37, limit: int = 400) -> list[dict]:
    """Negatives for the near and semantic models: a short fitting request (the anchor of a
    typo positive, up to 200 characters) with one lower-case content word replaced by another
    real word one edit away ("cost" / "cast", "hotel" / "hovel"; MiniLM tokenizer vocabulary,
    no other ending of the same word, no transposition, no vowel for another vowel: `swap_words`
    reads those as typos), alone and with typos elsewhere: one
    real word for another is another request, where the typo positives teach that a misspelt
    word is the same one."""
    from curate.models.verify import _FUNCTION_WORDS, _stem, _transposed, _vocabulary, _vowel_swap

    vocab = _vocabulary()
    rng = random.Random(seed)
    anchors = sorted({p["a"] for p in pairs if p.get("kind") == "typo" and p["label"] and p["a"].isascii()
                      and len(p["a"]) <= 200})
    rng.shuffle(anchors)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for a in anchors:
        spots = [m for m in re.finditer(r"[a-z]{4,}", a) if m.group(0) in vocab and m.group(0) not in _FUNCTION_WORDS
                 and not a[max(m.start() - 1, 0)].isalnum() and not a[m.end():m.end() + 1].isalnum()]
        rng.shuffle(spots)
        for m in spots:
            w = m.group(0)
            near = ({w[:i] + c + w[i + 1:] for i in range(len(w)) for c in letters}
                    | {w[:i] + c + w[i:] for i in range(len(w) + 1) for c in letters}
                    | {w[:i] + w[i + 1:] for i in range(len(w))})
            near = sorted(v for v in near if v != w and len(v) >= 4 and v in vocab and _stem(v) != _stem(w)
                          and not _transposed(w, v) and not _vowel_swap(w, v))
            if near:
                b = a[:m.start()] + rng.choice(near) + a[m.end():]
                src = {"src": "dedup_template"}
                out.append({**src, "a": a, "b": b, "label": False, "kind": "real_word_swap"})
                out.append({**src, "a": a, "b": typo(b, rng, k=1), "label": False, "kind": "real_word_swap"})
                break
        if len(out) >= limit:
            break
    return out


_SMALL = sorted(_UNIT_WORDS, key=_UNIT_WORDS.get)  # "zero" .. "nineteen", the words `value_diff` reads
_TENS = sorted(_TENS_WORDS, key=_TENS_WORDS.get)


def spell_number(n: int) -> str | None:
    """An integer written out ("25" -> "twenty-five", "300" -> "three hundred"), or None past
    what chat users spell out."""
    if n < 20:
        return _SMALL[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else "-" + _SMALL[n % 10])
    for scale, word in ((1000, "thousand"), (100, "hundred")):
        if n % scale == 0 and n // scale < 20:
            return f"{_SMALL[n // scale]} {word}"
    return None


def spell_numbers(text: str, rng: random.Random) -> str:
    """Whole numbers of `text` written out, each with probability .7 (not in a decimal, a time
    or a year-like number): "a 3-day trip for 4" -> "a three-day trip for four"."""
    def sub(m: re.Match) -> str:
        word = spell_number(int(m.group(0)))
        return word if word is not None and rng.random() < 0.7 else m.group(0)
    return re.sub(r"(?<![\d.,:])\b\d{1,4}\b(?![.,:]\d)", sub, text)


def _template_pairs(pairs: list[dict]):
    """The template pairs (`FIT_TEMPLATES`, `DEDUP_TEMPLATES`: rewordings, typos, twins) with an
    ASCII first text, which `spelled_number_pairs` and `unit_pairs` rewrite."""
    for p in pairs:
        if p.get("src") in ("template", "dedup_template") and p.get("kind") in (
                "reworded", "reworded_typo", "typo", "twin", "twin_reworded") and p["a"].isascii():
            yield p


def spelled_number_pairs(pairs: list[dict], *, seed: int = 41) -> list[dict]:
    """For the near and semantic models: the template pairs (`FIT_TEMPLATES`, `DEDUP_TEMPLATES`)
    whose second text has whole numbers, with those numbers written out and the label kept:
    "Can you start a ten-minute timer?" is the same request as "... for 10 minutes", "... a
    fifteen-minute timer" another (`value_diff` reads both as values)."""
    rng = random.Random(seed)
    out = []
    for p in _template_pairs(pairs):
        if not re.search(r"\d", p["b"]):
            continue
        b = spell_numbers(p["b"], rng)
        if b != p["b"]:
            out.append({"src": "dedup_template", "a": p["a"], "b": b, "label": p["label"], "kind": f"{p['kind']}_spelled"})
    return out


# Durations another way, by (unit, count): what a chat user writes instead ("30 minutes" / "half
# an hour", "5 years" / "60 months"); `unit_pairs` rewrites the template pairs with them.
_SAME_DURATION = {
    ("minute", 15): ["a quarter of an hour"], ("minute", 30): ["half an hour"], ("minute", 45): ["three quarters of an hour"],
    ("minute", 60): ["an hour", "one hour"], ("minute", 90): ["an hour and a half", "1.5 hours"],
    ("minute", 120): ["two hours"], ("hour", 1): ["60 minutes"], ("hour", 2): ["120 minutes"], ("hour", 3): ["180 minutes"],
    ("hour", 24): ["a day"], ("hour", 48): ["two days"], ("day", 1): ["24 hours"], ("day", 2): ["48 hours"],
    ("day", 3): ["72 hours"], ("day", 7): ["a week", "one week"], ("day", 14): ["two weeks", "a fortnight"],
    ("week", 1): ["seven days"], ("week", 2): ["14 days"], ("week", 4): ["28 days"], ("month", 6): ["half a year"],
    ("month", 12): ["a year", "one year"], ("month", 24): ["two years"], ("month", 36): ["three years"],
    ("year", 1): ["12 months"], ("year", 2): ["24 months"], ("year", 3): ["36 months"], ("year", 5): ["60 months"],
    ("year", 10): ["a decade", "120 months"], ("year", 20): ["240 months", "two decades"],
}
_DURATION = re.compile(r"\b(\d+)(-| )(minute|hour|day|week|month|year)(s?)\b")
# Clock times in digits and in words, for `clock_pairs`.
_CLOCK_WORDS = [("7:30", "half past seven"), ("8:15", "a quarter past eight"), ("5:45", "a quarter to six"),
                ("9:00", "nine o'clock"), ("10:30", "half past ten"), ("11:45", "a quarter to twelve"), ("4:15", "quarter past four")]
CLOCK_TEMPLATES = [
    ("Remind me to call the pharmacy at {t}.", "At {t}, ping me to phone the pharmacy."),
    ("Book a table for two at {t} on Saturday.", "Can you reserve dinner for 2 people this Saturday at {t}?"),
    ("My train leaves at {t}. When should I leave home if the station is 20 minutes away?",
     "The station is a 20-minute walk and my train is at {t}; what time do I need to head out?"),
    ("Schedule a team call for {t} on Thursday and invite Priya.", "Set up a Thursday meeting with Priya at {t}."),
]


# Error twins (dedup only; written for fitting, distinct from every evaluation's texts): one
# question about an error, reworded, is the same request; about another error (another
# identifier in the same frame) it is another.
ERROR_FRAMES = [
    ("My {lang} program crashes with {err}. What causes it?", "What usually causes {err} in {lang}? My program keeps crashing with it."),
    ("How do I debug a {err} in {lang}?", "Tips for tracking down a {err} in {lang} code?"),
    ("What does {err} mean in {lang}, and how do I avoid it?", "{lang}: explain {err} and how to prevent it."),
]
ERRORS = {"Java": ["NullPointerException", "ArrayIndexOutOfBoundsException", "ClassCastException", "ConcurrentModificationException"],
          "JavaScript": ["ReferenceError", "RangeError", "UnhandledPromiseRejection", "SyntaxError"],
          "Python": ["RecursionError", "UnicodeDecodeError", "ModuleNotFoundError", "FileNotFoundError"],
          "C#": ["InvalidOperationException", "ArgumentNullException", "StackOverflowException", "FormatException"]}


def error_twin_pairs(*, seed: int = 47) -> list[dict]:
    """Pairs for the near and semantic models from `ERROR_FRAMES`: a question about an error and
    its rewording (also with typos) as positives; the same frame about another error of the same
    language, and the rewording against it, as negatives."""
    rng = random.Random(seed)
    src = {"src": "dedup_template"}
    out = []
    for a_t, r_t in ERROR_FRAMES:
        for lang, errs in sorted(ERRORS.items()):
            for i, err in enumerate(errs):
                other = errs[(i + 1) % len(errs)]
                a, r = a_t.format(lang=lang, err=err), r_t.format(lang=lang, err=err)
                out += [{**src, "a": a, "b": r, "label": True, "kind": "reworded"},
                        {**src, "a": a, "b": typo(r, rng, k=1), "label": True, "kind": "reworded_typo"},
                        {**src, "a": a, "b": a_t.format(lang=lang, err=other), "label": False, "kind": "error_twin"},
                        {**src, "a": r, "b": a_t.format(lang=lang, err=other), "label": False, "kind": "error_twin_reworded"}]
    return out


def convert_units(text: str, rng: random.Random) -> str:
    """`text` with each duration `_SAME_DURATION` knows written another way ("a 30-minute walk" ->
    "a half an hour walk" is clumsy, so hyphenated forms keep a number: "a 2-day trip" -> "a
    48-hour trip")."""
    def sub(m: re.Match) -> str:
        n, sep, unit = int(m.group(1)), m.group(2), m.group(3)
        other = _SAME_DURATION.get((unit, n))
        if not other:
            return m.group(0)
        if sep == "-":
            numeric = [o for o in other if o.split()[0].isdigit()]
            if not numeric:
                return m.group(0)
            count, word = numeric[0].split()
            return f"{count}-{word.rstrip('s')}"
        return rng.choice(other)
    return _DURATION.sub(sub, text)


def unit_pairs(pairs: list[dict], *, seed: int = 43) -> list[dict]:
    """For the near and semantic models: the template pairs whose second text holds a duration,
    with that duration written another way (`convert_units`), label kept: "... in half an hour"
    is the same request as "... in 30 minutes", "... in 45 minutes" another (`qty_diff` reads
    both as durations); and `CLOCK_TEMPLATES` with clock times in digits and in words (the same
    time: the same request; another time: another)."""
    rng = random.Random(seed)
    out = []
    for p in _template_pairs(pairs):
        b = convert_units(p["b"], rng)
        if b != p["b"]:
            out.append({"src": "dedup_template", "a": p["a"], "b": b, "label": p["label"], "kind": f"{p['kind']}_units"})
    for a_t, r_t in CLOCK_TEMPLATES:
        for i, (digits, words) in enumerate(_CLOCK_WORDS):
            other_digits, other_words = _CLOCK_WORDS[(i + 1) % len(_CLOCK_WORDS)]
            a = a_t.format(t=digits)
            for b, label, kind in ((r_t.format(t=words), True, "clock_reworded"), (a_t.format(t=words), True, "clock_words"),
                                   (r_t.format(t=digits), True, "reworded"), (a_t.format(t=other_digits), False, "twin"),
                                   (r_t.format(t=other_words), False, "clock_twin_reworded"),
                                   (a_t.format(t=other_words), False, "clock_twin")):
                out.append({"src": "dedup_template", "a": a, "b": b, "label": label, "kind": kind})
    return out


def dedup_template_pairs(templates=DEDUP_TEMPLATES, *, seed: int = 23) -> list[dict]:
    """Pairs for the near and semantic models from `DEDUP_TEMPLATES`: the request reworded
    (and with typos) as positives; another task on the same subject, the same request with
    other values, and another task against the rewording as negatives."""
    rng = random.Random(seed)
    out = []
    for a_t, r_t, others, slots in templates:
        keys = sorted(slots)
        combos = [dict(zip(keys, vals)) for vals in _product([slots[k] for k in keys])]
        rng.shuffle(combos)
        combos = combos[:5]
        for ci, v in enumerate(combos):
            w = combos[(ci + 1) % len(combos)]
            a, r = a_t.format(**v), r_t.format(**v)
            src = {"src": "dedup_template"}
            out.append({**src, "a": a, "b": r, "label": True, "kind": "reworded"})
            out.append({**src, "a": a, "b": typo(r, rng, k=rng.randint(1, 3)), "label": True, "kind": "reworded_typo"})
            out.append({**src, "a": a, "b": typo(a, rng, k=rng.randint(1, 2)), "label": True, "kind": "typo"})
            if w != v:
                out.append({**src, "a": a, "b": a_t.format(**w), "label": False, "kind": "twin"})
            for o in others:
                out.append({**src, "a": a, "b": o.format(**v), "label": False, "kind": "task_swap"})
                out.append({**src, "a": r, "b": o.format(**v), "label": False, "kind": "task_swap_reworded"})
    return out



def typo_rephrasing_pairs(pairs: list[dict], *, seed: int = 29) -> list[dict]:
    """The calibration split's English rephrasings of knowledge items with 1-2 typos, as
    positives for the near and semantic models: a chat user rewords *and* mistypes."""
    rng = random.Random(seed)
    out = []
    for p in pairs:
        if p.get("kind") == "rephrased" and p["label"] and p.get("data_type") == "knowledge" and p["b"].isascii():
            out.append({"src": "dedup_typo", "a": p["a"], "b": typo(p["b"], rng, k=rng.randint(1, 2)), "label": True,
                        "kind": "rephrased_typo", "cos_full": math.nan, "cos_multi": math.nan})
    return out


# The near and semantic models read `value_diff` (numbers as values: "three days" / "3-day"
# agree) instead of `num_diff` (numbers as written); decontam.json still reads `num_diff`.
# `prose_name_diff` (added for decontam after the dedup refit) is left out: the shipped near and
# semantic models were fitted without it.
DEDUP_FEATURES = [f for f in FEATURES if f not in ("num_diff", "prose_name_diff")]

# pairs that fit only the dedup models (added after the IDF fit; decontam never reads them)
DEDUP_ONLY = ("dedup_template", "dedup_typo")

# Generic frames (decontam only; written for fitting, subjects distinct from every evaluation
# set's texts): a benchmark-style request on one subject, and short chat requests in the SAME
# frame wording ("Explain the difference between ...") on another subject. A short row shares
# the frame's words with a longer item and little else, which is where the fit's positives
# of a question alone against passage + question sit (low cosine, partial overlap); without
# negatives of this kind "Explain the difference between a process and a thread." passed as
# MT-bench 146 (exothermic vs endothermic reactions) at cosine .28.
DECONTAM_FRAMES = [
    ("Please explain the differences between {x}, and give a real-world example of each.",
     ["Explain the difference between {x}.", "What's the difference between {x}?", "difference between {x}?"],
     ["mitosis and meiosis", "weather and climate", "a lake and a pond", "stocks and bonds", "speed and velocity",
      "an alligator and a crocodile", "empathy and sympathy", "a simile and a metaphor", "a violin and a viola",
      "a hurricane and a typhoon"]),
    ("Describe {x} in detail, covering how it works, why it matters and one common misconception about it.",
     ["Describe {x}.", "How does {x} work?", "Explain {x} to me."],
     ["a jet engine", "a solar eclipse", "a heat pump", "the tides", "a refrigerator", "a search engine", "a rainbow",
      "an MRI scanner", "a nuclear reactor", "a vending machine"]),
    ("Write a short story of about 300 words about {x}, told in the first person and ending with a twist.",
     ["Write a short story about {x}.", "Tell me a story about {x}.", "short story about {x} please"],
     ["a retired clockmaker", "a lost dog finding its way home", "an old submarine crew", "a time-travelling postman",
      "an astronaut stranded on Mars", "twin sisters separated at birth", "a forgotten umbrella", "a chess prodigy"]),
    ("What are the main advantages and disadvantages of {x}? Answer in a bulleted list of at most eight points.",
     ["What are the pros and cons of {x}?", "advantages and disadvantages of {x}", "Is {x} a good idea? pros and cons"],
     ["nuclear power", "online degrees", "open-plan offices", "car sharing", "four-day work weeks", "vertical farming",
      "remote work", "electric cars", "homeschooling", "microservices"]),
    ("Compose a poem about {x} with four rhyming stanzas and a hopeful final line.",
     ["Write a poem about {x}.", "poem about {x} please", "Can you write me a poem about {x}?"],
     ["a paper boat", "an abandoned fairground", "migrating geese", "a beekeeper's garden", "the first snowfall",
      "a city at dawn", "an old fishing boat", "a desert night"]),
    ("Summarize the main causes and consequences of {x} in one paragraph.",
     ["What caused {x}?", "Summarize {x} for me.", "Why did {x} happen?"],
     ["the Dust Bowl", "the fall of the Berlin Wall", "the Suez Crisis", "the Black Death", "the Industrial Revolution",
      "the Great Depression", "the Cuban Missile Crisis"]),
]


def frame_pairs(frames=DECONTAM_FRAMES, *, seed: int = 41, per_item: int = 3) -> list[dict]:
    """Decontam negatives from `DECONTAM_FRAMES`: each benchmark-style request against
    `per_item` short requests in its frame on other subjects (a shared frame is not a shared
    task). No positives: the short form on the same subject drops the item's limits and
    extras, which the fit already teaches with partial pastes and rewordings; as positives
    here they pulled the cut up to .67 (docs/decontam.md)."""
    rng = random.Random(seed)
    out = []
    for item, shorts, subjects in frames:
        for x in subjects:
            for y in rng.sample([s for s in subjects if s != x], per_item):
                out.append({"src": "decontam_frame", "a": item.format(x=x), "b": rng.choice(shorts).format(x=y),
                            "label": False, "kind": "frame_other_subject"})
    return out


# pairs that fit only the decontam model (added after the IDF fit, so idf.json and the dedup models do not change)
DECONTAM_ONLY = ("decontam_frame",)
# The decontam model's features, by name (`VerifierModel.columns`): `prose_name_diff` instead of
# `name_diff`, which counted `List`, `True`, `None` and docstring line starts of every code item
# as names (so a code item against a request in mixed case differed in names).
DECONTAM_FEATURES = [
    "cos_full", "cos_multi", "tfidf", "word_jaccard", "containment", "len_ratio", "num_diff", "prose_name_diff",
    "ident_diff", "cross_lingual", "short", "gap_other", "xl_multi", "same_tfidf", "unmatched_max", "unmatched_min",
    "code", "seg_tfidf", "seg_last",
]


def typo(text: str, rng: random.Random, k: int = 2) -> str:
    """k small typos: adjacent letters swapped, a letter dropped or doubled."""
    chars = list(text)
    spots = [i for i in range(1, len(chars) - 1) if chars[i].isalpha() and chars[i + 1].isalpha()]
    for i in sorted(rng.sample(spots, min(k, len(spots))), reverse=True):
        op = rng.randrange(3)
        if op == 0:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op == 1:
            del chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def renumber(text: str, rng: random.Random) -> str:
    """Every number replaced by a different one of similar size (a template twin)."""
    def sub(m: re.Match) -> str:
        v = m.group(0)
        digits = v.replace(",", "").replace(".", "")
        while True:
            new = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(len(digits) - 1))
            if new != digits:
                return new
    return re.sub(r"\d+(?:[.,]\d+)*", sub, text)


def _fill(t: str, vals: dict) -> str:
    return t.format(**vals)


def template_pairs(templates, translations, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for ti, (pa, pb, slots) in enumerate(templates):
        keys = sorted(slots)
        combos = [dict(zip(keys, vals)) for vals in _product([slots[k] for k in keys])]
        rng.shuffle(combos)
        combos = combos[:6]
        for ci, v in enumerate(combos):
            w = combos[(ci + 1) % len(combos)]
            a = _fill(pa, v)
            out.append({"src": "template", "a": a, "b": _fill(pb, v), "label": True, "kind": "reworded"})
            out.append({"src": "template", "a": a, "b": typo(a, rng), "label": True, "kind": "typo"})
            out.append({"src": "template", "a": a, "b": _fill(pa, w), "label": False, "kind": "twin"})
            out.append({"src": "template", "a": a, "b": _fill(pb, w), "label": False, "kind": "twin_reworded"})
            for tr in translations.get(ti, [])[:3]:
                out.append({"src": "template", "a": a, "b": _fill(tr, v), "label": True, "kind": "translated"})
                out.append({"src": "template", "a": a, "b": _fill(tr, w), "label": False, "kind": "twin_translated"})
    return out


def _product(lists):
    if not lists:
        yield ()
        return
    for head in lists[0]:
        for rest in _product(lists[1:]):
            yield (head, *rest)


class CachedEmbedder:
    """Wraps an embedder; vectors cached on disk by text hash (reruns are fast)."""

    def __init__(self, inner, name: str):
        self.inner, self.model_id = inner, inner.model_id if hasattr(inner, "model_id") else name
        self.path = CACHE / f"emb-{name}.npz"
        self.store: dict[str, np.ndarray] = {}
        if self.path.exists():
            z = np.load(self.path)
            self.store = dict(zip(z["keys"].tolist(), z["vecs"]))

    def embed(self, texts):
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        miss = sorted({k: t for k, t in zip(keys, texts) if k not in self.store}.items())
        if miss:
            vecs = np.asarray(self.inner.embed([t for _, t in miss]), dtype=np.float32)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            self.store.update({k: v for (k, _), v in zip(miss, vecs)})
            CACHE.mkdir(parents=True, exist_ok=True)
            ks = sorted(self.store)
            np.savez(self.path, keys=np.array(ks), vecs=np.stack([self.store[k] for k in ks]))
        return np.stack([self.store[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)


def embedders():
    from curate.models.embed import Embedder
    from curate.models.verify import multilingual_embedder

    return CachedEmbedder(Embedder(), "full"), CachedEmbedder(multilingual_embedder(), "multi")


def testbed_sets(root: Path) -> tuple[dict, dict]:
    """decontam.testbed's sets plus HumanEval in Rust, Go and Java (humaneval_multi.jsonl), and
    each set's family (the benchmark its originals come from)."""
    from decontam.testbed import load_sets

    ld = root / "llm-decontaminator"
    sets = load_sets(ld)
    multi_rows = [json.loads(x).get("text") or "" for x in (ld / "rephrase" / "humaneval_multi.jsonl").read_text().splitlines()]
    he = sets["humaneval_python"][0]
    for b, lang in enumerate(("c_multi", "js_multi", "rust", "go", "java")):
        if lang in ("rust", "go", "java"):
            sets[f"humaneval_{lang}"] = (he, multi_rows[b * 164 : (b + 1) * 164], "code")
    family = {name: ("humaneval" if name.startswith("humaneval") else name.rsplit("_", 1)[0]) for name in sets}
    return sets, family



def rephrasing_pool(sets: dict, family: dict) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """Every non-empty rephrasing with an original, in set-name order: texts, (family, item) owners, set names."""
    pool, owner, pool_set = [], [], []
    for name in sorted(sets):
        orig, reph, _ = sets[name]
        for i, t in enumerate(reph):
            if i < len(orig) and t.strip():
                pool.append(t)
                owner.append((family[name], i))
                pool_set.append(name)
    return pool, owner, pool_set

def protocol_pairs(root: Path, full, multi, *, k: int = 5, item_range: tuple[int, int] = (0, 100),
                   codealpaca_items: tuple[int, int] | None = None, lexical_k: int = 0) -> dict:
    """The decontam protocols' pairs for items `item_range` of each set (eval_verifier scores
    items 0-99; the fit reads the same protocols on the calibration items, 100 onwards):

    - `pos`: (item i, its rephrasing in this set); `nn`: (item i, the rephrasing in this set
      of the item nearest to it); `rnd`: a random other item's rephrasing in this set;
    - `search`: what a top-k search hands the verifier: the top `k` of each channel among all
      ~2,200 published rephrasings, once with this set's rephrasing of i present (`key`
      (i, True); the item's other rephrasings removed) and once with all of them removed
      ((i, False)); label True only for i's own rephrasing; with `lexical_k`, also the top
      `lexical_k` of the lexical channel (decontam.ngram.LexicalIndex, as `decontam check` adds them);
    - `codealpaca`: the reference tool's CodeAlpaca neighbour of each HumanEval item in the
      range, labelled with GPT-4's verdict (all 18 True are items 10-60; items 100-163 give
      real-neighbour negatives); `codealpaca_items`: its item range, if not `item_range`.

    Each pair carries both channel cosines and `gap_other` with the negative's own source item
    masked (see the module docstring)."""
    sets, family = testbed_sets(root)
    originals = {family[n]: sets[n][0] for n in sets}
    pool, owner, pool_set = rephrasing_pool(sets, family)
    pf, pm = full.embed(pool), multi.embed(pool)
    of = {f: full.embed(o) for f, o in originals.items()}
    om = {f: multi.embed(o) for f, o in originals.items()}
    owner_arr = np.array([f"{f}:{i}" for f, i in owner])
    pool_set_arr = np.array(pool_set)
    if lexical_k:
        from decontam.ngram import LexicalIndex

        lexical = LexicalIndex.build(pool)

    def pairs_for(fam: str, items: list[int], rows: list[int], masks: list, labels: list, keys: list | None = None) -> list[dict]:
        to_items = pf[rows] @ of[fam].T
        out = []
        for r, (i, j, m, lab) in enumerate(zip(items, rows, masks, labels)):
            row = to_items[r].copy()
            row[i] = -2.0
            if m is not None:
                row[m] = -2.0
            out.append({"a": originals[fam][i], "b": pool[j], "label": bool(lab), "item": i,
                        "cos_full": float(pf[j] @ of[fam][i]), "cos_multi": float(pm[j] @ om[fam][i]),
                        "gap_other": float(row.max() - to_items[r, i]), **({"key": keys[r]} if keys else {})})
        return out

    res: dict = {"sets": {}}
    for name in sorted(sets):
        fam = family[name]
        orig, reph, _ = sets[name]
        items = [i for i in range(item_range[0], min(item_range[1], len(orig), len(reph))) if reph[i].strip()]
        if len(items) < 2:
            continue
        own_rows = {i: int(np.flatnonzero((owner_arr == f"{fam}:{i}") & (pool_set_arr == name))[0]) for i in items}
        rng = np.random.default_rng(0)
        set_rows = np.array([own_rows[i] for i in items])
        sims = pf[set_rows] @ of[fam][items].T  # row r (item items[r]'s rephrasing) vs item c
        nn_neg, rnd_neg = [], []
        for c, i in enumerate(items):
            col = sims[:, c].copy()
            col[c] = -2.0
            nn_neg.append(int(np.argmax(col)))
            r = int(rng.integers(len(items) - 1))
            rnd_neg.append(r + (r >= c))
        n = len(items)
        parts = {
            "items": items,
            "pos": pairs_for(fam, items, [own_rows[i] for i in items], [None] * n, [True] * n),
            "nn": pairs_for(fam, items, [int(set_rows[r]) for r in nn_neg], [items[r] for r in nn_neg], [False] * n),
            "rnd": pairs_for(fam, items, [int(set_rows[r]) for r in rnd_neg], [items[r] for r in rnd_neg], [False] * n),
        }
        s_items, s_rows, s_masks, s_key, s_lab = [], [], [], [], []
        for i in items:
            mine = owner_arr == f"{fam}:{i}"
            for positive in (True, False):
                allowed = ~mine | ((pool_set_arr == name) if positive else np.zeros(len(pool), bool))
                cand = set()
                for s in (pf @ of[fam][i], pm @ om[fam][i]):
                    s = np.where(allowed, s, -2.0)
                    cand |= {int(j) for j in np.argsort(-s, kind="stable")[:k]}
                if lexical_k:  # its ranking over the allowed rows: search past the masked ones
                    found = lexical.search([originals[fam][i]], k=lexical_k + int((~allowed).sum()))[0]
                    cand |= set([int(j) for j in found if j >= 0 and allowed[j]][:lexical_k])
                for j in sorted(cand):
                    s_items.append(i)
                    s_rows.append(j)
                    s_masks.append(owner[j][1] if owner[j][0] == fam and owner[j][1] != i else None)
                    s_key.append((i, positive))
                    s_lab.append(j == own_rows[i])
        parts["search"] = pairs_for(fam, s_items, s_rows, s_masks, s_lab, s_key)
        res["sets"][name] = parts
    from decontam.testbed import codealpaca_db

    he = originals["humaneval"]
    lo, hi = codealpaca_items or item_range
    db = [r for r in codealpaca_db(root / "llm-decontaminator") if lo <= (he.index(r["test"]) if r["test"] in he else -1) < hi]
    b = [r["train"][0] for r in db]
    vb, mb = full.embed(b), multi.embed(b)
    ca = []
    for idx, r in enumerate(db):
        i = he.index(r["test"])
        s = vb[idx] @ of["humaneval"].T
        own = float(s[i])
        s[i] = -2.0
        ca.append({"a": r["test"], "b": b[idx], "label": bool(r["results"][0]), "item": i, "cos_full": own,
                   "cos_multi": float(mb[idx] @ om["humaneval"][i]), "gap_other": float(s.max() - own)})
    res["codealpaca"] = ca
    return res


def testbed_pairs(root: Path, full, multi, *, items_from: int = 100, items_to: int | None = None,
                  nn_full: int = 3, nn_multi: int = 2) -> list[dict]:
    """Decontam pairs from the published rephrasings: positives, nearest-neighbour and random negatives.

    Items `items_from`..`items_to` of each benchmark are the anchors (calibration: 100 onwards).
    """
    sets, family = testbed_sets(root)
    originals = {family[n]: sets[n][0] for n in sets}
    pool, owner, _ = rephrasing_pool(sets, family)  # every rephrasing, owned by (family, item)
    pf, pm = full.embed(pool), multi.embed(pool)
    ofull = {f: full.embed(o) for f, o in originals.items()}
    omulti = {f: multi.embed(o) for f, o in originals.items()}
    out = []
    for fam in sorted(originals):
        orig = originals[fam]
        dtype = "code" if fam == "humaneval" else "knowledge"
        stop = len(orig) if items_to is None else min(items_to, len(orig))
        # cosine of every pool text to every item of this family (for the masked gap)
        to_items = pf @ ofull[fam].T
        for i in range(items_from, stop):
            own = np.array([o == (fam, i) for o in owner])
            sf, sm = pf @ ofull[fam][i], pm @ omulti[fam][i]
            chosen = {int(j): True for j in np.flatnonzero(own)}
            for s in (sf, sm):
                masked = np.where(own, -2.0, s)
                for j in np.argsort(-masked, kind="stable")[: nn_full if s is sf else nn_multi]:
                    chosen.setdefault(int(j), False)
            for j, label in sorted(chosen.items()):
                ofam, oi = owner[j]
                row = to_items[j].copy()
                row[i] = -2.0
                if ofam == fam:
                    row[oi] = -2.0  # mask the negative's own source item
                gap = float(row.max() - sf[j]) if len(row) > 1 else 0.0
                out.append({"src": f"testbed:{fam}", "a": orig[i], "b": pool[j], "label": label,
                            "kind": "rephrased" if label else "nn_negative", "data_type": dtype,
                            "cos_full": float(sf[j]), "cos_multi": float(sm[j]), "gap_other": gap, "item": i})
            # one random mismatched negative per item (the paper's protocol), same family
            rng = random.Random(f"{fam}:{i}")
            cand = [j for j, o in enumerate(owner) if o[0] == fam and o[1] != i]
            j = rng.choice(cand)
            row = to_items[j].copy()
            row[i] = -2.0
            row[owner[j][1]] = -2.0
            out.append({"src": f"testbed:{fam}", "a": orig[i], "b": pool[j], "label": False, "kind": "random_negative",
                        "data_type": dtype, "cos_full": float(sf[j]), "cos_multi": float(sm[j]),
                        "gap_other": float(row.max() - sf[j]), "item": i})
    return out


def docstring_pairs(root: Path, full, *, items_from: int = 100) -> list[dict]:
    """HumanEval item vs a description of its task (positive) or of its nearest other item (negative)."""
    he = [json.loads(x)["text"] for x in (root / "llm-decontaminator" / "test" / "HumanEval.jsonl").read_text().splitlines()]
    descs = [_description(t) for t in he]
    vecs = full.embed(descs)
    out = []
    for i in range(items_from, len(he)):
        if not descs[i]:
            continue
        sims = vecs @ vecs[i]
        sims[i] = -2
        j = int(np.argmax(sims))
        d = descs[i][0].lower() + descs[i][1:]
        out.append({"src": "docstring", "a": he[i], "b": "Write a Python function that " + d, "label": True, "kind": "instruction"})
        out.append({"src": "docstring", "a": he[i], "b": descs[i], "label": True, "kind": "partial"})
        out.append({"src": "docstring", "a": he[i], "b": "Write a Python function that " + descs[j][0].lower() + descs[j][1:],
                    "label": False, "kind": "nn_instruction"})
    return out


def _description(code: str) -> str:
    m = re.search(r'"""(.*?)(?:>>>|For example|Example|"""|$)', code, re.S)
    if not m:
        return ""
    return " ".join(m.group(1).split())[:400]


def gsm8k_pairs(root: Path, full, *, first: int = 660, seed: int = 7) -> list[dict]:
    rows = [json.loads(x)["text"] for x in (root / "llm-decontaminator" / "rephrase" / "rephrase_gsm8k.jsonl").read_text().splitlines()]
    qs = [r.split("\nAnswer:")[0].removeprefix("Question: ").strip() for r in rows[:first]]
    vecs = full.embed(qs)
    rng = random.Random(seed)
    out = []
    for i, q in enumerate(qs):
        sims = vecs @ vecs[i]
        sims[i] = -2
        j = int(np.argmax(sims))
        words = q.split()
        out.append({"src": "gsm8k", "a": q, "b": typo(q, rng), "label": True, "kind": "typo"})
        out.append({"src": "gsm8k", "a": q, "b": " ".join(words[: max(6, int(len(words) * 0.75))]), "label": True, "kind": "partial"})
        out.append({"src": "gsm8k", "a": q, "b": renumber(q, rng), "label": False, "kind": "twin"})
        out.append({"src": "gsm8k", "a": q, "b": qs[j], "label": False, "kind": "nn_negative"})
    return out


NAMES = ["Alice", "Tokyo", "Brazil", "Napoleon", "Microsoft", "Nile", "Mozart", "Chicago", "Egypt", "Kepler",
         "Amazon", "Berlin", "Lincoln", "Everest", "Shakespeare", "Mexico", "Tesla", "Darwin", "Madrid", "Nairobi"]


def substitution_pairs(root: Path, *, seed: int = 11) -> list[dict]:
    """Real texts with one name or one content word replaced: the same shape, another request
    (negatives), next to copies with a typo in that word (positives): what differs matters."""
    from decontam.testbed import load_sets

    sets = load_sets(root / "llm-decontaminator")
    texts = []
    for name in ("mmlu_sociology_english", "mmlu_high_school_us_history_english"):
        orig = sets[name][0]
        texts += [t for t in orig[100:] if 20 < len(t) < 600]
    rows = [json.loads(x)["text"] for x in (root / "llm-decontaminator" / "rephrase" / "rephrase_gsm8k.jsonl").read_text().splitlines()]
    texts += [r.split("\nAnswer:")[0].removeprefix("Question: ").strip() for r in rows[:660:2]]
    he = [json.loads(x)["text"] for x in (root / "llm-decontaminator" / "test" / "HumanEval.jsonl").read_text().splitlines()]
    texts += [d for d in (_description(t) for t in he[100:]) if d]
    vocab = sorted({w for t in texts for w in re.findall(r"\b[a-z]{5,12}\b", t)})
    rng = random.Random(seed)
    out = []
    for t in texts:
        words = re.findall(r"\b[a-z]{5,12}\b", t)
        caps = [m for m in re.findall(r"(?<=[a-z,] )[A-Z][a-z]{2,}", t)]
        if caps:
            c = rng.choice(caps)
            new = rng.choice([n for n in NAMES if n != c])
            out.append({"src": "substitution", "a": t, "b": re.sub(rf"\b{c}\b", new, t), "label": False, "kind": "name_twin"})
        if words:
            w = rng.choice(words)
            new = rng.choice(vocab)
            if new != w:
                out.append({"src": "substitution", "a": t, "b": re.sub(rf"\b{w}\b", new, t, count=1), "label": False,
                            "kind": "word_twin"})
                out.append({"src": "substitution", "a": t, "b": re.sub(rf"\b{w}\b", typo(w, rng, 1), t, count=1),
                            "label": True, "kind": "typo"})
    return out


def noisy_copy_pairs(root: Path, *, seed: int = 17) -> list[dict]:
    """Near copies of real calibration texts of every length (MMLU sociology / US-history rows
    past 100, passages included; HumanEval items 100 onwards): 1-3 typos, commas dropped,
    the end punctuation changed, lower-cased: what a re-posted prompt looks like. Positives
    (the other fitting texts are mostly short, and a long passage copied with typos is the
    same request)."""
    from decontam.testbed import load_sets

    sets = load_sets(root / "llm-decontaminator")
    texts = []
    for name in ("mmlu_sociology_english", "mmlu_high_school_us_history_english"):
        texts += [t for t in sets[name][0][100:] if len(t) > 20]
    texts += sets["humaneval_python"][0][100:]
    rng = random.Random(seed)
    out = []
    for t in texts:
        b = typo(t, rng, k=rng.randint(1, 3))
        if rng.random() < 0.5:
            b = b.replace(",", "")
        if rng.random() < 0.5:
            b = b.rstrip(".?!:\n ") + rng.choice(["!!", " ?", "...", "?!", ""])
        if rng.random() < 0.3:
            b = b.lower()
        out.append({"src": "noisy_copy", "a": t, "b": b, "label": True, "kind": "near_copy"})
    return out


def calibration_protocol_pairs(root: Path, full, multi) -> list[dict]:
    """The decontam protocols on the calibration items (100 onwards; `protocol_pairs`): what a
    top-k search really hands the verifier there, cross-language near misses included, and
    CodeAlpaca's neighbours of HumanEval items 100-163 (all judged False by GPT-4: real
    neighbours from a real instruction set). The scored items 0-99 are never read here."""
    prot = protocol_pairs(root, full, multi, item_range=(100, 10**6))
    out = []
    for name, parts in prot["sets"].items():
        fam = "humaneval" if name.startswith("humaneval") else name.rsplit("_", 1)[0]
        dtype = "code" if fam == "humaneval" else "knowledge"
        for part in ("pos", "nn", "rnd", "search"):
            for p in parts[part]:
                kind = {"pos": "rephrased", "nn": "nn_negative", "rnd": "random_negative"}.get(part) or (
                    "search_positive" if p["label"] else "search_negative")
                out.append({**{k: v for k, v in p.items() if k != "key"}, "src": f"protocol:{fam}", "kind": kind,
                            "data_type": dtype})
    for p in prot["codealpaca"]:
        out.append({**p, "src": "codealpaca", "kind": "codealpaca_true" if p["label"] else "codealpaca_false",
                    "data_type": "code"})
    return out


def build_pairs(root: Path) -> list[dict]:
    full, multi = embedders()
    pairs = testbed_pairs(root, full, multi) + docstring_pairs(root, full) + gsm8k_pairs(root, full)
    # the protocol pairs repeat some testbed pairs (the same item and rephrasing): first one wins
    seen = {(p["a"], p["b"]) for p in pairs}
    for p in calibration_protocol_pairs(root, full, multi):
        if (p["a"], p["b"]) not in seen:
            seen.add((p["a"], p["b"]))
            pairs.append(p)
    pairs += substitution_pairs(root) + noisy_copy_pairs(root)
    pairs += template_pairs(FIT_TEMPLATES, FIT_TRANSLATIONS, seed=3)
    # a generated negative whose words did not change (the new word was already there, the
    # name did not match) is not a negative: drop it rather than teach the model noise
    from curate.models.verify import _WORD, normalise

    def words(t: str) -> frozenset:
        return frozenset(_WORD.findall(normalise(t)))

    pairs = [p for p in pairs if p["label"] or words(p["a"]) != words(p["b"])]
    return pairs, full, multi


def features_of(pairs: list[dict], full, multi, *, with_gap: bool) -> np.ndarray:
    from curate.models.verify import Verifier

    a, b = [p["a"] for p in pairs], [p["b"] for p in pairs]
    f = pair_features(
        a, b,
        cos_full=[p.get("cos_full", np.nan) for p in pairs], cos_multi=[p.get("cos_multi", np.nan) for p in pairs],
        gap_other=[p.get("gap_other", 0.0) if with_gap else 0.0 for p in pairs],
    )
    v = Verifier("near", model=_dummy(), full_embedder=full, multi_embedder=multi)
    v.fill_channels(f, a, b)
    return model_matrix(f)


def _dummy() -> VerifierModel:
    k = len(FEATURES)
    return VerifierModel("near", list(FEATURES), [0.0] * k, [1.0] * k, [0.0] * k, 0.0, 0.5, [0.5, 0.5], 0.5)


def fit_idf(texts: list[str], path: Path) -> None:
    """Hashed IDF tables (char 3-5-grams and content words) over the fitting texts, as uint8."""
    import base64

    from curate.models import verify

    char_df = np.zeros(verify.IDF_BUCKETS)
    word_df = np.zeros(verify.IDF_BUCKETS)
    mat = verify._char_vectorizer().transform([verify.normalise(t)[:4000] for t in texts]).tocsr()
    char_df += np.bincount(mat.indices, minlength=verify.IDF_BUCKETS)
    for t in texts:
        for w in verify._content_words(t)[:300]:
            word_df[verify.word_bucket(w)] += 1
    n = len(texts)
    scale = 16.0
    tables = {}
    for name, df in (("char", char_df), ("word", word_df)):
        idf = np.log((1 + n) / (1 + df)) + 1.0
        tables[name] = base64.b64encode(np.clip(np.round(idf * scale), 1, 255).astype(np.uint8).tobytes()).decode()
    path.write_text(json.dumps({"scale": scale, "texts": n, **tables}) + "\n", encoding="utf-8")
    verify._idf_tables.cache_clear()


def _gbt(seed: int = 0):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, subsample=1.0,
                                      min_samples_leaf=5, random_state=seed)


def _export_trees(model) -> tuple[float, list]:
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        nodes = [[int(t.feature[n]) if t.children_left[n] != -1 else -1, round(float(t.threshold[n]), 7),
                  int(t.children_left[n]), int(t.children_right[n]), round(float(t.value[n][0][0]), 7)]
                 for n in range(t.node_count)]
        trees.append(nodes)
    p = float(model.init_.class_prior_[1])
    return math.log(p / (1 - p)), trees


# Dedup merges for good (a merged request leaves the export): where a task names a precision
# here, its cut is raised (never lowered) until cross-validated precision reaches it. The
# semantic model's F1 cut sat at out-of-fold precision .935 once value_diff let it accept
# rewordings with spelled-out numbers; .95 is the precision target.
MIN_PRECISION: dict[str, float] = {"semantic": 0.95}


def precision_cut(cv: np.ndarray, y: np.ndarray, cut: float, target: float) -> float:
    """The lowest cut >= `cut` at which precision (of the pairs at or above it) is >= `target`:
    it only ever raises `cut`, and leaves it where no cut above it reaches the target.

    >>> precision_cut(np.array([.9, .8, .7, .6]), np.array([1, 1, 0, 1]), 0.5, 0.9)
    0.8
    """
    order = np.argsort(-cv, kind="stable")
    s, lab = cv[order], y[order]
    prec = np.cumsum(lab) / np.arange(1, len(lab) + 1)
    best = None
    for k in range(len(s)):
        # a cut at s[k] takes every pair with probability >= s[k] (ties included)
        if k + 1 < len(s) and s[k + 1] == s[k]:
            continue
        if s[k] < cut:
            break
        if prec[k] >= target:
            best = float(s[k])
    return max(cut, best) if best is not None else cut


def fit_task(task: str, X: np.ndarray, y: np.ndarray, meta: dict, groups: np.ndarray | None = None,
             features: list[str] | None = None) -> VerifierModel:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    from decontam.calibrate import fit_threshold

    # a model reads its features by name (`VerifierModel.columns`): fit on the named subset
    features = list(FEATURES) if features is None else list(features)
    X = X[:, [FEATURES.index(name) for name in features]]
    # out-of-fold probabilities; with `groups` (the anchor text), all pairs of one benchmark
    # item or one request fall in the same fold, so the cut is set on items the model never saw
    cv = np.zeros(len(y))
    folds = (GroupKFold(5).split(X, y, groups) if groups is not None
             else StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    for tr, te in folds:
        cv[te] = _gbt().fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    cut, f1 = fit_threshold(cv.tolist(), y.tolist())
    if task in MIN_PRECISION:
        cut = precision_cut(cv, y, cut, MIN_PRECISION[task])
        pred = cv >= cut
        f1 = 2 * float((pred & (y == 1)).sum()) / max(float(pred.sum() + y.sum()), 1.0)
    order = np.argsort(-cv, kind="stable")
    prec = np.cumsum(y[order]) / np.arange(1, len(y) + 1)
    hi = cut
    for k in range(len(y) - 1, -1, -1):  # the lowest probability above which precision stays >= .98
        if prec[k] >= 0.98 and cv[order[k]] >= cut:
            hi = float(cv[order[k]])
            break
    asc = np.argsort(cv, kind="stable")
    npv = np.cumsum(1 - y[asc]) / np.arange(1, len(y) + 1)
    lo = cut
    for k in range(len(y) - 1, -1, -1):
        if npv[k] >= 0.98 and cv[asc[k]] <= cut:
            lo = float(cv[asc[k]])
            break
    model = _gbt().fit(X, y)
    init, trees = _export_trees(model)
    pred = cv >= cut
    quality = {
        "cv_f1": round(f1, 4),
        "cv_precision": round(float((pred & (y == 1)).sum() / max(pred.sum(), 1)), 4),
        "cv_recall": round(float((pred & (y == 1)).sum() / max(y.sum(), 1)), 4),
        "cv_in_band": round(float(((cv >= lo) & (cv < hi)).mean()), 4),
        "importances": {n: round(float(v), 4) for n, v in zip(features, model.feature_importances_)},
    }
    k = len(features)
    out = VerifierModel(
        task=task, features=features, mean=[0.0] * k, scale=[1.0] * k, coef=[0.0] * k,
        intercept=round(init, 7), threshold=round(float(cut), 4),
        band=[round(min(lo, cut), 4), round(max(hi, cut), 4)], strict_threshold=round(max(float(hi), float(cut)), 4),
        fitted_on=meta, quality=quality, kind="gbt", trees=trees, learning_rate=0.1,
    )
    # the exported trees must reproduce scikit-learn's probabilities
    assert np.allclose(out._raw_proba(X), model.predict_proba(X)[:, 1], atol=1e-5), "tree export mismatch"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testbed", default=str(TESTBED))
    ap.add_argument("--dump", help="write the labelled pairs (JSONL) here")
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--tasks", default=",".join(TASKS), help="refit only these models (comma-separated; default: all)")
    args = ap.parse_args()
    pairs, full, multi = build_pairs(Path(args.testbed))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for p in pairs:
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the features must read the IDF table fitted here, also when --out is not the package's
    # folder (before: they read the package's table, so a fit into another folder did not
    # match the table saved beside its models)
    from curate.models import verify

    verify.MODEL_DIR = out
    verify.load_model.cache_clear()
    fit_idf(sorted({t for p in pairs for t in (p["a"], p["b"])}), out / "idf.json")
    # dedup-only pairs come after the IDF fit: the table (which decontam reads too) stays that of
    # the shared pairs, so adding them changes neither idf.json nor decontam.json
    pairs = pairs + dedup_template_pairs() + typo_rephrasing_pairs(pairs) + swap_twin_pairs()
    pairs = pairs + real_word_swap_pairs(pairs)
    pairs = pairs + spelled_number_pairs(pairs)
    pairs = pairs + unit_pairs(pairs) + error_twin_pairs()
    # decontam-only pairs, likewise after the IDF fit: neither idf.json nor the dedup models change with them
    pairs = pairs + frame_pairs()
    y_all = np.array([p["label"] for p in pairs], dtype=int)
    X_gap = features_of(pairs, full, multi, with_gap=True)
    X_nogap = X_gap.copy()
    X_nogap[:, FEATURES.index("gap_other")] = 0.0
    tfidf, cont = X_gap[:, FEATURES.index("tfidf")], X_gap[:, FEATURES.index("containment")]
    anchors = np.array([hashlib.sha1(p["a"].encode()).hexdigest() for p in pairs])
    for task in [t for t in TASKS if t in args.tasks.split(",")]:
        dedup_only = np.array([p.get("src") in DEDUP_ONLY for p in pairs])
        decontam_only = np.array([p.get("src") in DECONTAM_ONLY for p in pairs])
        if task == "decontam":
            X, sel = X_gap, ~dedup_only
        elif task == "semantic":
            X, sel = X_nogap, np.array([p.get("kind") not in ("random_negative", "codealpaca_false", "codealpaca_true")
                                        for p in pairs]) & ~decontam_only
        else:  # near: what MinHash hands over, lexically close pairs; lexical only (no embedding)
            X, sel = X_nogap.copy(), ((tfidf >= 0.45) | (cont >= 0.5)) & ~decontam_only
            for name in ("cos_full", "cos_multi", "xl_multi"):
                X[:, FEATURES.index(name)] = 0.0
        kinds: dict[str, int] = {}
        for p, s in zip(pairs, sel):
            if s:
                key = f"{p['kind']}:{'pos' if p['label'] else 'neg'}"
                kinds[key] = kinds.get(key, 0) + 1
        meta = {"pairs": int(sel.sum()), "positives": int(y_all[sel].sum()), "kinds": dict(sorted(kinds.items())),
                "script": "benchmarks/fit_verifier.py"}
        model = fit_task(task, X[sel], y_all[sel], meta, groups=anchors[sel],
                         features=DECONTAM_FEATURES if task == "decontam" else DEDUP_FEATURES)
        model.save(out / f"{task}.json")
        print(f"{task}: {meta['pairs']} pairs ({meta['positives']} positive); cut {model.threshold}, band {model.band}; "
              f"CV {model.quality}")
        print("   importances: " + ", ".join(f"{n} {c:.2f}" for n, c in model.quality["importances"].items()))


if __name__ == "__main__":
    main()
