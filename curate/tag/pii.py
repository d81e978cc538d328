"""PII detection and redaction: rules and validators, no model download.

Kinds and how each is found (recall and false positives are measured by
`benchmarks/eval_taggers_quality.py` on `tests/data/pii_eval.jsonl` and real clean text):

- ``email``: address pattern with a dotted domain.
- ``phone``: digit runs shaped like phone numbers, validated by `phonenumbers`
  (international ``+CC`` numbers in any region; national numbers in `phone_regions`).
  A run of bare digits with no separator counts only next to a phone word ("call",
  "tel", "mobile", ...), so order numbers and big integers stay.
- ``ip``: IPv4 and IPv6, validated by `ipaddress`; loopback, unspecified and netmask
  forms (``127.0.0.1``, ``0.0.0.0``, ``::1``, ``255.255.255.0``) and ``version 1.2.3.4``
  are kept, as they name nobody and are common in code.
- ``credit_card``: 13-19 digits (spaces or dashes allowed), Luhn-checked, with a known
  issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
- ``secret``: API keys and tokens by their published prefixes (OpenAI ``sk-``, Anthropic,
  AWS ``AKIA...`` and secret keys, GitHub, GitLab, Slack, Google, Stripe, Hugging Face,
  JWTs), ``Bearer`` tokens, PEM private key blocks, passwords in URLs, and quoted values
  assigned to ``password``/``secret``/``token``/``api_key`` names.
- ``address``: street addresses with a house number and a street type (English, German,
  French, Spanish, Italian, Portuguese forms), with unit, city, state and ZIP/postcode
  when they follow.
- ``name``: no NER model (the PyPI copies of spaCy's ``en_core_web_sm`` are unofficial
  uploads). Names are found from context: "my name is X" and its equivalents in French,
  German, Spanish, Italian, Portuguese and Russian, "call me X", "named X", titles (Mr, Dr, ...), greetings ("Dear X,") and
  sign-offs ("Regards,\\nX"), relations ("my wife X"), and a list of common given names
  followed by a capitalised surname. Once found, every other mention of the name's words
  in the conversation is redacted with the same placeholder. Names in running text
  without any of these cues are missed: see the measured recall.

Placeholders are numbered per kind and stay consistent inside a conversation
(``NAME_1`` is the same person in every message), as in LMSYS-Chat-1M. The annotation
table stores the redacted conversation, the `redacted` flag, counts per kind and the
spans (message, kind, offsets, placeholder); never the raw values.

>>> PIIRedactor().redact_text("mail me at jane@example.com")      # doctest: +SKIP
('mail me at EMAIL_1', [Span(start=11, end=27, kind='email', ...)])
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field

import pyarrow as pa

from curate.core import schema
from curate.tag import names as tag_names
from curate.core.errors import ConfigError, MissingDependencyError
from curate.core.lake import Lake
from curate.tag.tagging import TagStats, run_tagger

log = logging.getLogger(__name__)

TABLE = "pii"
DETECTOR_VERSION = "rules-1"

KINDS: tuple[str, ...] = ("secret", "email", "credit_card", "ip", "phone", "address", "name")
PLACEHOLDER = {
    "secret": "SECRET", "email": "EMAIL", "credit_card": "CREDIT_CARD", "ip": "IP",
    "phone": "PHONE", "address": "ADDRESS", "name": "NAME",
}
# Overlaps are resolved by this priority (validated, specific kinds first), then length.
_PRIORITY = {k: i for i, k in enumerate(KINDS)}

SPAN = pa.struct([
    ("message_index", pa.int32()),
    ("kind", pa.string()),
    ("start", pa.int32()),  # character offsets in the original message
    ("end", pa.int32()),
    ("placeholder", pa.string()),
    ("rule", pa.string()),
])
COUNTS = pa.struct([(k, pa.int32()) for k in KINDS])

SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("redacted", pa.bool_()),
    ("pii_count", pa.int32()),
    ("counts", COUNTS),
    ("spans", pa.list_(SPAN)),
    ("redacted_conversation", pa.list_(schema.MESSAGE)),
    ("detector", pa.string()),
])


@dataclass(frozen=True, kw_only=True)
class PIIConfig:
    kinds: tuple[str, ...] = KINDS
    # national numbers (no +CC) are tried in these regions, in order
    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "IN", "BR", "CN", "RU")
    roles: tuple[str, ...] = schema.ROLES  # messages of these roles are redacted
    propagate_names: bool = True  # redact other mentions of a found name's words
    name_gazetteer: bool = True  # known given names in running text ("Tell Tomasz that ...")
    name_ner: bool = True  # spaCy NER on messages that read as French (curate.tag.names)
    batch_size: int = 1000

    def __post_init__(self) -> None:
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad or not self.kinds:
            raise ConfigError(f"unknown PII kinds {bad}; choose from {', '.join(KINDS)}")
        bad_roles = sorted(set(self.roles) - set(schema.ROLES))
        if bad_roles:
            raise ConfigError(f"unknown roles {bad_roles}; choose from {', '.join(schema.ROLES)}")
        try:
            import phonenumbers
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("PII tagging needs phonenumbers: pip install phonenumbers") from exc
        supported = phonenumbers.SUPPORTED_REGIONS
        bad_regions = sorted(r for r in self.phone_regions if r not in supported)
        if bad_regions:
            raise ConfigError(f"unknown phone regions {bad_regions} (use ISO 3166 codes like US, GB)")
        if self.batch_size <= 0:
            raise ConfigError("batch_size must be positive")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    key: str = field(repr=False)  # normalised value: same key, same placeholder (never stored)
    rule: str = ""


# ---------------------------------------------------------------------------- emails
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9.+%_-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}\b"
)


def find_emails(text: str) -> list[Span]:
    if "@" not in text:
        return []
    out = []
    for m in _EMAIL.finditer(text):
        if m.group().lower().startswith("git@"):  # ssh remotes, not a person's mailbox
            continue
        out.append(Span(m.start(), m.end(), "email", m.group().lower(), "email"))
    return out


# ---------------------------------------------------------------------------- IPs
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])")
_VERSION_BEFORE = re.compile(r"\b(?:version|ver\.?|v|release)\s*$", re.I)


def find_ips(text: str) -> list[Span]:
    out = []
    if "." in text:
        for m in _IPV4.finditer(text):
            ip = ipaddress.IPv4Address(m.group())
            if ip.is_loopback or ip.is_unspecified or m.group().startswith("255."):
                continue
            if _VERSION_BEFORE.search(text[max(0, m.start() - 10): m.start()]):
                continue
            out.append(Span(m.start(), m.end(), "ip", str(ip), "ipv4"))
    if "::" in text or text.count(":") >= 5:
        for m in _IPV6.finditer(text):
            raw = m.group()
            if sum(c in "0123456789abcdefABCDEF" for c in raw) < 4:
                continue
            try:
                ip = ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            if ip.is_loopback or ip.is_unspecified:
                continue
            out.append(Span(m.start(), m.end(), "ip", ip.compressed, "ipv6"))
    return out


# ---------------------------------------------------------------------------- cards
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,]\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _issuer_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    p2, p4, p6 = int(d[:2]), int(d[:4]), int(d[:6])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # Amex
    if d.startswith("6011") or d.startswith("65") or 644 <= int(d[:3]) <= 649 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19  # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19  # JCB
    if p2 in (36, 38, 39) or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19  # Diners
    if p2 == 62:
        return 16 <= n <= 19  # UnionPay
    if p2 in (50, 56, 57, 58, 63, 67):
        return 12 <= n <= 19  # Maestro
    return False


def find_cards(text: str) -> list[Span]:
    out = []
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
            continue
        seps = {c for c in raw if not c.isdigit()}
        if len(seps) > 1:  # "1234-5678 9012-3456": mixed separators, not a card as written
            continue
        if _issuer_ok(digits) and luhn_ok(digits):
            out.append(Span(m.start(), m.end(), "credit_card", digits, "luhn"))
    return out


# ---------------------------------------------------------------------------- secrets
_SECRET_PATTERNS: list[tuple[str, re.Pattern, int]] = [
    ("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.S), 0),
    ("anthropic", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), 0),
    ("openai", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), 0),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}\b"), 0),
    ("aws_secret_key", re.compile(
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"), 1),
    ("github", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 0),
    ("gitlab", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), 0),
    ("slack", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"), 0),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), 0),
    ("stripe", re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"), 0),
    ("huggingface", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("bearer", re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)"), 1),
    ("url_password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s@/]{3,})@", re.I), 1),
    ("assigned_secret", re.compile(
        r"(?i:\b(?:[a-z0-9_]*(?:password|passwd|pwd|secret|token|api_?key|apikey|access_?key|auth_?key|private_?key)))"
        r"[\"']?\s*(?::|=|:=|=>)\s*[\"']([^\"'\s]{6,})[\"']"), 1),
]
_PLACEHOLDER_VALUE = re.compile(
    r"(?i)^(?:<.*>|\{.*\}|\$\{?.*|x{4,}|\*{3,}|\.{3,}|your[_-]?.*|.*(?:here|placeholder|changeme|example_?key|dummy).*|"
    r"[A-Z_]+|os\.environ.*|process\.env.*)$"
)


def find_secrets(text: str) -> list[Span]:
    out = []
    for rule, pattern, group in _SECRET_PATTERNS:
        for m in pattern.finditer(text):
            value = m.group(group)
            if group and _PLACEHOLDER_VALUE.match(value):
                continue  # "YOUR_API_KEY", "<token>", "${TOKEN}": nothing secret
            out.append(Span(m.start(group), m.end(group), "secret", value, rule))
    return out


# ---------------------------------------------------------------------------- phones
_PHONE_CANDIDATE = re.compile(r"(?<![\w+.])(?:\+|00)?\(?\d[\d\s().\-/]{5,20}\d(?![\w]|[.,]\d)")
_PHONE_WORDS = re.compile(
    r"(?i)(?:phone|call|tel\b|tel\.|telephone|mobile|cell|whatsapp|sms|text me|fax|contact|number|"
    r"tél|téléphone|portable|telefon|handy|teléfono|telefono|celular|número|numero|телефон|номер|电话|手机|電話|전화)"
)
_MATHY = re.compile(r"\s[-/+*=]\s|\d\(|\)\d|\d\.\d+\s*[-/]|^\d{1,3}(?:\.\d{1,3}){3}$|^\d{1,3}\.\d+$")
_OPERATOR = set("=*/^+×÷<>%")
_DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")


class _PhoneFinder:
    def __init__(self, regions: tuple[str, ...]):
        import phonenumbers

        self.pn = phonenumbers
        self.regions = regions

    def __call__(self, text: str) -> list[Span]:
        if sum(ch.isdigit() for ch in text) < 7:
            return []
        out = []
        for m in _PHONE_CANDIDATE.finditer(text):
            raw = m.group().rstrip(" -./(")
            start = m.start()
            if raw.endswith(")") and raw.count("(") < raw.count(")"):
                raw = raw[:-1]
            digits = sum(c.isdigit() for c in raw)
            if not 7 <= digits <= 15 or _DATE_LIKE.match(raw.strip()):
                continue
            # arithmetic ("3 - 9(1) - 14"), decimals and dotted quads are not phone numbers
            if _MATHY.search(raw) or raw.count("(") > 1 or raw.count(")") > 1:
                continue
            before = text[:start].rstrip()[-1:]
            after = text[m.end():].lstrip()[:1]
            if before in _OPERATOR or after in _OPERATOR:
                continue
            if raw[0] == "(" and ")" not in raw:
                raw, start = raw[1:], start + 1
            international = raw.startswith("+") or raw.startswith("00")
            bare = raw.isdigit()
            cue = bool(_PHONE_WORDS.search(text[max(0, start - 40): start]))
            if bare and not international and not cue:
                continue
            # A missed number is a leak, an extra redaction a small loss: a `+CC` number, or a
            # national one next to a phone word, needs only a possible length for its country
            # ("+33 7 15 86 11 13" is not an assigned French range); others must be valid.
            number = self._parse(raw, international, possible=international or cue)
            if number is None:
                continue
            key = self.pn.format_number(number, self.pn.PhoneNumberFormat.E164)
            out.append(Span(start, start + len(raw), "phone", key, "phonenumbers"))
        return out

    def _parse(self, raw: str, international: bool, possible: bool = False):
        """The number `raw` parses to: valid in a region, else (with `possible`) of a possible length."""
        pn = self.pn
        candidates = ("+" + raw[2:],) if raw.startswith("00") else (raw,)
        regions = (None,) if international else self.regions
        fallback = None
        for text in candidates:
            for region in regions:
                try:
                    number = pn.parse(text, region)
                except pn.NumberParseException:
                    continue
                if pn.is_valid_number(number):
                    return number
                if possible and fallback is None and pn.is_possible_number(number):
                    fallback = number
        return fallback


_DEFAULT_PHONE_FINDERS: dict[tuple[str, ...], _PhoneFinder] = {}


def find_phones(text: str, regions: tuple[str, ...] | None = None) -> list[Span]:
    """Phone numbers in `text` (national numbers tried in `regions`, default PIIConfig's)."""
    regions = regions or PIIConfig.__dataclass_fields__["phone_regions"].default
    finder = _DEFAULT_PHONE_FINDERS.get(regions)
    if finder is None:
        finder = _DEFAULT_PHONE_FINDERS[regions] = _PhoneFinder(regions)
    return finder(text)


# ---------------------------------------------------------------------------- addresses
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
_EN_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Terrace|Way|Place|Pl|"
    r"Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Close|Crescent|Row|Walk|Alley|Plaza|Gardens|Mews|Hill)"
)
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?\s*#?\w{1,6})?"
_CITY = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:-[A-ZÀ-ÖØ-Þa-zà-öø-ÿ][a-zà-öø-ÿ'’]+)*"
_CITY_TAIL = (
    r"(?:,\s*" + _CITY + r"(?:[ \t]+" + _CITY + r"){0,2})?"  # city
    r"(?:,?\s*(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|\d{5}))?"  # state ZIP / UK postcode
)
_ADDRESS_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("address_en", re.compile(
        r"\b\d{1,6}[A-Za-z]?(?:-\d{1,4})?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?(?:" + _CAP + r"\s+){1,4}"
        + _EN_STREET + r"\b\.?(?:\s+(?:NW|NE|SW|SE)\b)?" + _UNIT + _CITY_TAIL)),
    ("po_box", re.compile(r"\b(?i:P\.?\s?O\.?\s?Box|Post Office Box)\s+\d{1,6}\b" + _CITY_TAIL)),
    ("address_de", re.compile(
        r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee)\s+\d{1,4}\s?[a-z]?\b"
        r"(?:,\s*\d{4,5}\s+[A-ZÄÖÜ][\wäöüß-]+)?")),
    ("address_fr", re.compile(
        r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours)\s+"
        r"(?:(?:de|du|des|la|le|les|l'|d')\s*)*" + _CITY + r"(?:[ -]+(?:(?:de|du|des|la|le|l'|d')\s*)*" + _CITY + r"){0,4}"
        r"(?:,\s*\d{5}\s+" + _CITY + r"(?:[ -]" + _CITY + r")?)?")),
    ("address_es_it_pt", re.compile(
        r"\b(?:Calle|C/|Avenida|Avda\.|Av\.|Plaza|Paseo|Carrera|Rua|Travessa|Via|Viale|Piazza|Corso|Largo)\s+"
        r"(?:(?:de|del|la|las|los|da|do|dos|das|di|della|dei|delle)\s+)*" + _CAP
        + r"(?:\s+(?:(?:de|del|la|da|do|di|della)\s+)*" + _CAP + r"){0,3},?\s*(?:n[º°o]\.?\s*)?\d{1,5}[a-zA-Z]?\b"
        r"(?:,\s*\d{4,5}(?:-\d{3})?\s+" + _CAP + r"(?:\s+" + _CAP + r")?)?")),
]


def find_addresses(text: str) -> list[Span]:
    out = []
    for rule, pattern in _ADDRESS_PATTERNS:
        for m in pattern.finditer(text):
            value = m.group().rstrip(" ,")
            out.append(Span(m.start(), m.start() + len(value), "address", _norm_words(value), rule))
    return out


# ---------------------------------------------------------------------------- names
# Given names, words that are not names, public figures and the gazetteer/NER finders live
# in curate.tag.names; the cue rules stay here.
_GIVEN_NAMES = tag_names.OWN_GIVEN_NAMES
_NOT_NAMES = tag_names.NOT_NAMES
_NAME_TOKEN = (r"(?:(?:O['’]|Mc|Mac)?[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:-[A-ZÀ-ÖØ-Þa-zà-öø-ÿ][a-zà-öø-ÿ']+)?"
               r"|[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?)")
_NAME_SEQ = _NAME_TOKEN + r"(?:\s+(?:(?:van|von|der|de|da|di|del|la|le|bin|al|ibn)\s+)?" + _NAME_TOKEN + r"){0,2}"
_RELATIONS = (
    r"wife|husband|son|daughter|boss|colleague|coworker|brother|sister|mother|father|mom|mum|dad|manager|teacher|"
    r"neighbor|neighbour|landlord|landlady|girlfriend|boyfriend|partner|friend|uncle|aunt|cousin|grandma|grandpa|"
    r"grandmother|grandfather|fiancee|fiancé|fiance|client|student|tenant|roommate|doctor|lawyer"
)
_NAME_CONTEXT: list[tuple[str, re.Pattern]] = [
    ("name_intro", re.compile(
        r"(?i:\b(?:my|his|her|their|our)\s+(?:full\s+|first\s+|last\s+|real\s+)?name\s+is|\bmy\s+name's|"
        r"\bi\s+am\s+called|\bi'?m\s+called|\bcall\s+me|\bnamed|\bname\s*:|\bsigned,?|"
        r"\bme\s+llamo|\bmi\s+nombre\s+es|\bje\s+m'appelle|\bmon\s+nom\s+est|\bich\s+heiße|"
        r"\bich\s+heisse|\bmein\s+name\s+ist|\bmeu\s+nome\s+é|\bme\s+chamo|\bmi\s+chiamo|"
        r"\bil\s+mio\s+nome\s+è|\bменя\s+зовут|\bмоё\s+имя|\bмое\s+имя)\s+(" + _NAME_SEQ + ")")),
    # weak cues ("I'm Tired", "this is Python"): the first word must be a known given name
    ("name_weak_cue", re.compile(
        r"(?i:\bi\s+am|\bi'm|\bi’m|\bsoy|\bthis\s+is|\bcalled|\bje\s+suis|\bich\s+bin|\bsono)\s+("
        + _NAME_SEQ + ")")),
    ("name_title", re.compile(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Srta|Herr|Frau|Mme|Mlle|M)\.?\s+(" + _NAME_SEQ + ")")),
    ("name_greeting", re.compile(r"^\s*(?i:dear|hi|hello|hey|hola|bonjour|hallo|ciao|olá|querid[oa]|cher|chère|liebe[r]?)\s+("
                                 + _NAME_SEQ + r")\s*[,!:\n]", re.M)),
    ("name_signoff", re.compile(
        r"(?i:\b(?:regards|best\s+regards|kind\s+regards|warm\s+regards|sincerely|yours\s+truly|yours\s+sincerely|"
        r"thanks|thank\s+you|cheers|best|cordialement|saludos|atentamente|mit\s+freundlichen\s+grüßen|grüße|"
        r"cordiali\s+saluti|atenciosamente|с\s+уважением),?\s*\n+\s*)(" + _NAME_SEQ + r")\s*$", re.M)),
    ("name_relation", re.compile(r"(?i:\bmy\s+(?:" + _RELATIONS + r")(?:'s\s+name\s+is|\s+is\s+called|,)?)\s+(" + _NAME_SEQ + ")")),
]
# weak cues: the first word must be a known given name
_NAME_WORD_RULES = {"name_weak_cue"}


def _clean_name(value: str) -> tuple[int, str]:
    """Trim non-name words from the end; returns (length kept, name) or (0, '')."""
    tokens = value.split()
    kept: list[str] = []
    for tok in tokens:
        if tok in _NOT_NAMES:
            break
        kept.append(tok)
    if not kept:
        return 0, ""
    name = " ".join(kept)
    # the kept tokens are a prefix of `value` separated by single-or-more spaces
    end = 0
    for tok in kept:
        end = value.index(tok, end) + len(tok)
    return end, name


def find_names(text: str, *, gazetteer: bool = True) -> list[Span]:
    """Names from cues and, with `gazetteer`, known given names in running text.

    Public figures and fictional characters (`tag_names.FAMOUS`) are skipped, except
    after a self-introduction ("my name is ...")."""
    out = []
    for rule, pattern in _NAME_CONTEXT:
        for m in pattern.finditer(text):
            raw = m.group(1)
            length, name = _clean_name(raw)
            if not length:
                continue
            if rule in _NAME_WORD_RULES and name.split()[0] not in _GIVEN_NAMES:
                continue
            if rule != "name_intro" and tag_names.is_famous(name.split()):
                continue
            start = m.start(1)
            out.append(Span(start, start + length, "name", tag_names.name_key(name.split()), rule))
    if gazetteer:
        out += [Span(s, e, "name", key, rule) for s, e, key, rule in tag_names.find_gazetteer_names(text)]
    return out


def _norm_words(value: str) -> str:
    return " ".join(value.casefold().split())


# ---------------------------------------------------------------------------- redaction
def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep non-overlapping spans: higher-priority kind first, then the longer span."""
    chosen: list[Span] = []
    for s in sorted(spans, key=lambda s: (_PRIORITY[s.kind], -(s.end - s.start), s.start)):
        if all(s.end <= c.start or s.start >= c.end for c in chosen):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


class PIIRedactor:
    """Finds PII in texts and redacts conversations with consistent placeholders."""

    def __init__(self, config: PIIConfig | None = None):
        self.config = config or PIIConfig()
        finders = {
            "secret": find_secrets, "email": find_emails, "credit_card": find_cards, "ip": find_ips,
            "phone": _PhoneFinder(self.config.phone_regions), "address": find_addresses, "name": self._find_names,
        }
        self._ner = tag_names.FrenchNER() if self.config.name_ner else None
        self._finders = [finders[k] for k in KINDS if k in self.config.kinds]
        self.detector_id = f"{DETECTOR_VERSION}:{','.join(k for k in KINDS if k in self.config.kinds)}"
        if "name" in self.config.kinds:
            self.detector_id += (":names=cues" + ("+gazetteer" if self.config.name_gazetteer else "")
                                 + ("+ner_fr" if self.config.name_ner else ""))

    def prefetch_names(self, texts) -> None:
        """Batch the French NER over the French texts among `texts` (call before redacting them)."""
        if self._ner is not None and "name" in self.config.kinds:
            self._ner.prefetch(t for t in texts if t and tag_names.looks_french(t))

    def _find_names(self, text: str) -> list[Span]:
        spans = find_names(text, gazetteer=self.config.name_gazetteer)
        if self._ner is not None and tag_names.looks_french(text):
            spans += [Span(s, e, "name", key, rule) for s, e, key, rule in self._ner.find(text)]
        return spans

    def find(self, text: str) -> list[Span]:
        """Non-overlapping PII spans of `text`, in order."""
        if not text:
            return []
        spans: list[Span] = []
        for finder in self._finders:
            spans.extend(finder(text))
        return resolve_overlaps(spans)

    def redact_text(self, text: str) -> tuple[str, list[Span]]:
        """Redact one text on its own (placeholders numbered from 1)."""
        red = self.redact_conversation([{"role": "user", "content": text}])
        return red.messages[0]["content"], [s for _, s in red.spans]

    def redact_conversation(self, messages: list[dict]) -> "Redaction":
        numbering: dict[tuple[str, str], str] = {}
        per_kind: dict[str, int] = {}

        def placeholder(kind: str, key: str) -> str:
            ph = numbering.get((kind, key))
            if ph is None:
                per_kind[kind] = per_kind.get(kind, 0) + 1
                ph = numbering[(kind, key)] = f"{PLACEHOLDER[kind]}_{per_kind[kind]}"
            return ph

        found: list[list[Span]] = []
        for msg in messages:
            content = msg.get("content") or ""
            found.append(self.find(content) if msg.get("role") in self.config.roles else [])
        if self.config.propagate_names and "name" in self.config.kinds:
            found = self._propagate_names(messages, found)

        out_messages, spans = [], []
        for i, (msg, msg_spans) in enumerate(zip(messages, found)):
            content = msg.get("content")
            if not msg_spans:
                out_messages.append({"role": msg.get("role"), "content": content})
                continue
            pieces, pos = [], 0
            for s in msg_spans:
                ph = placeholder(s.kind, s.key)
                pieces += [content[pos:s.start], ph]
                pos = s.end
                spans.append((i, s, ph))
            pieces.append(content[pos:])
            out_messages.append({"role": msg.get("role"), "content": "".join(pieces)})
        return Redaction(out_messages, [(i, s) for i, s, _ in spans], [ph for _, _, ph in spans])

    def _propagate_names(self, messages: list[dict], found: list[list[Span]]) -> list[list[Span]]:
        # "My name is Jane Doe" ... later "Jane" alone: the same person, the same NAME_n.
        # A shorter name whose words all belong to a longer one found in the conversation
        # takes the longer one's key ("Diego" after "Diego Herrera", "Дмитрию" after "Дмитрий").
        keys = sorted({s.key for spans in found for s in spans if s.kind == "name"},
                      key=lambda k: (-len(k.split()), k))
        canonical: dict[str, str] = {}
        for key in keys:
            words = set(key.split())
            canonical[key] = next((longer for longer in keys if len(longer.split()) > len(words)
                                   and words <= set(longer.split())), key)
        words: dict[str, str] = {}
        rekeyed = []
        for msg, msg_spans in zip(messages, found):
            new_spans = []
            for s in msg_spans:
                if s.kind == "name":
                    s = Span(s.start, s.end, s.kind, canonical.get(s.key, s.key), s.rule)
                    name = (msg.get("content") or "")[s.start:s.end]
                    for tok in name.split():
                        if len(tok) >= 3 and tok not in _NOT_NAMES and tok.casefold() not in tag_names.PARTICLES:
                            words.setdefault(tok, s.key)
                new_spans.append(s)
            rekeyed.append(new_spans)
        found = rekeyed
        if not words:
            return found
        pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?![\w-])")
        out = []
        for msg, msg_spans in zip(messages, found):
            if msg.get("role") not in self.config.roles:
                out.append(msg_spans)
                continue
            extra = [Span(m.start(), m.end(), "name", words[m.group()], "name_repeat")
                     for m in pattern.finditer(msg.get("content") or "")]
            out.append(resolve_overlaps(msg_spans + extra) if extra else msg_spans)
        return out

    def tag_batch(self, batch: pa.Table) -> pa.Table:
        """One `pii` annotation row per conversation of `batch`."""
        ids = batch.column("conversation_id").to_pylist()
        convs = batch.column("conversation").to_pylist()
        rows = {name: [] for name in SCHEMA.names}
        self.prefetch_names(m.get("content") for messages in convs for m in messages or []
                            if m.get("role") in self.config.roles and isinstance(m.get("content"), str))
        for cid, messages in zip(ids, convs):
            red = self.redact_conversation(messages or [])
            counts = {k: 0 for k in KINDS}
            span_rows = []
            for (i, s), ph in zip(red.spans, red.placeholders):
                counts[s.kind] += 1
                span_rows.append({"message_index": i, "kind": s.kind, "start": s.start, "end": s.end,
                                  "placeholder": ph, "rule": s.rule})
            rows["conversation_id"].append(cid)
            rows["redacted"].append(bool(span_rows))
            rows["pii_count"].append(len(span_rows))
            rows["counts"].append(counts)
            rows["spans"].append(span_rows)
            rows["redacted_conversation"].append(red.messages)
            rows["detector"].append(self.detector_id)
        return pa.table(rows, schema=SCHEMA)


@dataclass
class Redaction:
    messages: list[dict]
    spans: list[tuple[int, Span]]  # (message index, span in the original message)
    placeholders: list[str]


def tag_pii(lake: Lake, config: PIIConfig | None = None, *, limit: int | None = None, progress=None) -> TagStats:
    """Redact every conversation of the lake not yet in the `pii` table.

    >>> tag_pii(Lake("lake")).extra["redacted"]                         # doctest: +SKIP
    5
    """
    redactor = PIIRedactor(config or PIIConfig())

    def summarize(result: pa.Table) -> dict:
        import pyarrow.compute as pc

        stats = {"redacted": int(pc.sum(result.column("redacted").cast(pa.int64())).as_py() or 0)}
        for k in KINDS:
            stats[f"pii_{k}"] = int(pc.sum(pc.struct_field(result.column("counts"), k)).as_py() or 0)
        return stats

    return run_tagger(lake, TABLE, redactor.tag_batch, stage="tag_pii",
                      batch_size=redactor.config.batch_size, limit=limit, progress=progress,
                      summarize=summarize)


def redacted_conversations(lake: Lake, *, require_complete: bool = True) -> pa.Table:
    """The lake's conversations with `conversation` replaced by its PII-redacted version.

    Same columns as the `conversations` view, plus `redacted` (bool). Export reads this,
    so no raw PII leaves the lake. With `require_complete` (default), a conversation
    missing from the `pii` table is an error (run `curate tag pii` first) rather than
    exported unredacted.

    >>> redacted_conversations(Lake("lake")).num_rows                    # doctest: +SKIP
    66
    """
    from curate.core.errors import LakeError

    out_schema = schema.CONVERSATIONS.append(pa.field("redacted", pa.bool_()))
    con = lake.connect()
    try:
        has_table = TABLE in lake.annotation_tables()
        missing_sql = ("SELECT count(*) FROM conversations c ANTI JOIN pii p USING (conversation_id)"
                       if has_table else "SELECT count(*) FROM conversations")
        missing = con.execute(missing_sql).fetchall()[0][0]
        if missing and require_complete:
            raise LakeError(f"{missing} conversations have no PII redaction yet: run `curate tag pii` first")
        if not has_table:
            return out_schema.empty_table()
        select = ", ".join("p.redacted_conversation AS conversation" if c == "conversation" else f"c.{c}"
                           for c in schema.CONVERSATIONS.names)
        # a conversation tagged twice (parts of two runs) keeps its latest redaction
        table = con.sql(
            f"SELECT {select}, p.redacted FROM conversations c JOIN "
            "(SELECT * FROM pii QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY run_id DESC) = 1) p "
            "USING (conversation_id) ORDER BY c.conversation_id"
        ).to_arrow_table()
        return table.cast(out_schema)
    finally:
        con.close()
