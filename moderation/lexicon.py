"""Keyword rules of the local moderation tier: weighted regexes per category.

Each rule adds evidence to one category; a message's score for a category is the
noisy-or of the weights of the rules that match (1 - prod(1 - w)), so two weak
cues make a stronger one and no score exceeds 1. A few rules need two cues at
once (a group word near an insult is hate, an insult alone is not): those are
written as compound rules in `score_text`.

Weights are set by hand: 0.6+ means "flag on this cue alone", 0.3-0.5 "worth a
second look" (the LLM tier's band). The rules were written while looking at
`tests/data/moderation_eval.jsonl`, so their agreement there is in-sample;
`tests/data/moderation_heldout.jsonl` was written afterwards and never used to tune
them (figures in docs/moderation.md). Word lists are short and readable; they are a
first filter for the second tier, not a complete blocklist.
"""

from __future__ import annotations

import re
from functools import lru_cache

from moderation.taxonomy import CATEGORIES


def _rx(pattern: str) -> re.Pattern[str]:
    # Patterns are lower case and run on lower-cased text: re.IGNORECASE makes every
    # alternation several times slower in Python's engine.
    return re.compile(pattern)


_YOU = r"(?:you|your|you're|ur|u|yourself|ya)"
_ME = r"(?:myself|my life|my wrists?|my arms?|my legs?|my body)"
_PERSON = (
    r"(?:him|her|them|you|someone|somebody|people|everyone|everybody|my (?:\w+ )?(?:wife|husband|boss|teacher|"
    r"neighbou?r|brother|sister|mom|dad|mother|father|ex|girlfriend|boyfriend|classmates?|coworkers?|friend|family)|"
    r"the (?:victim|prisoner|hostage|guard|cop|police|president|kid|child))"
)
_GROUP = (
    r"(?:immigrants?|refugees?|muslims?|islam|jews?|jewish|christians?|hindus?|blacks?|black people|whites?|"
    r"white people|asians?|chinese|mexicans?|arabs?|africans?|indians?|gays?|gay people|lesbians?|homosexuals?|"
    r"trans(?:gender)? people|trannies|women|females|girls|disabled people|retards|gypsies|roma|latinos?|"
    r"foreigners|mosques?|synagogues?|churches)"
)
_MINOR = (
    r"(?:(?:1[0-7]|[1-9])[- ]?(?:years?|yrs?|yo)(?:[- ]old)?|underage|under-age|minors?|child(?:ren)?|kids?|"
    r"little (?:girl|boy)|schoolgirls?|schoolboys?|middle school|elementary|preteens?|pre-teens?|"
    r"loli|toddlers?|infants?|babies|young teens?|high ?school(?:er)?s?)"
)
_SEXUAL = (
    r"(?:sex(?:ual(?:ly)?)?|sexy|erotic\w*|porn\w*|nude|naked|horny|orgasm\w*|seduc\w*|aroused?|lewd|"
    r"explicit|nsfw|fetish\w*|intercourse|make love|making love|strip(?:tease|ping)?|genitals?|penis|vagina|"
    r"breasts?|boobs?|dick|cock|pussy|blowjob|masturbat\w*|fondl\w*|kinky|smut\w*|talk dirty|dirty talk)"
)

# (category, weight, pattern)
RULES: list[tuple[str, float, re.Pattern[str]]] = [
    # harassment: insults aimed at the reader or a named person
    ("harassment", 0.35, _rx(r"\b(?:idiot|moron|imbecile|loser|dumbass|dumbest|stupid|retard(?:ed)?|worthless|"
                             r"pathetic|brainless|clown|scum|trash|garbage|ugly|fat\w*|cretin|bitch|bastard|"
                             r"asshole|jerk|piece of (?:shit|crap)|freak|dimwit|halfwit|failure)\b")),
    ("harassment", 0.35, _rx(rf"\b{_YOU}\b.{{0,30}}\b(?:are|r|is)\b.{{0,25}}\b(?:idiot|moron|loser|stupid|dumb|"
                             r"worthless|pathetic|clown|useless|disgusting|ugly|trash|joke)\b")),
    ("harassment", 0.3, _rx(r"\b(?:shut up|shut your (?:mouth|face)|go cry|nobody (?:likes|wants|cares)|"
                            r"kill yourself|kys|go die|get lost|you suck|screw you|f+u+c+k+ (?:you|off))\b")),
    ("harassment", 0.35, _rx(r"\b(?:insult|mock|humiliate|bully|roast|mean message|belittle|degrade)\w*\b.{0,40}"
                             r"\b(?:him|her|them|my|coworker|classmate|boss|friend|teacher|sister|brother)\b")),
    # harassment/threatening: threats against a person
    ("harassment/threatening", 0.7, _rx(r"\b(?:i will|i'll|i'm going to|i am going to|i'm gonna|gonna|we will|"
                                        r"going to)\b.{0,25}\b(?:find|hurt|beat|break|kill|stab|shoot|end|destroy|"
                                        r"make (?:you|him|her|them) (?:regret|pay|suffer)|come for|get you|"
                                        r"smash|punch|strangle|burn)\b")),
    ("harassment/threatening", 0.7, _rx(r"\b(?:watch your back|know where (?:you|your \w+|he|she) (?:live|lives|"
                                        r"go|goes|work|works|sleep|sleeps)|you(?:'re| are) (?:dead|next)|"
                                        r"you(?:'ll| will) (?:regret|pay|be sorry)|or else|sleep with one eye open)\b")),
    ("harassment/threatening", 0.45, _rx(r"\b(?:threaten\w*|threatening|intimidat\w*|scare (?:him|her|them))\b")),
    # hate: contempt for a protected group (compound rules below carry most of it)
    ("hate", 0.5, _rx(r"\b(?:subhuman|untermensch|inferior race|master race|white power|race traitors?|"
                      r"go back to (?:your|their) (?:country|countries)|belong in the kitchen|"
                      r"(?:sent|send (?:them|him|her)) back)\b")),
    ("hate", 0.35, _rx(r"\b(?:racist|sexist|homophobic|antisemitic|islamophobic|bigoted) (?:joke|rant|speech|"
                       r"essay|poem|story|slogan)s?\b")),
    # hate/threatening: violence called for against a group (compound rules below)
    ("hate/threatening", 0.6, _rx(r"\b(?:ethnic cleansing|genocide|final solution|race war|exterminat\w+|"
                                  r"gas (?:the|them)|lynch\w*|pogrom)\b")),
    # self-harm
    ("self-harm", 0.6, _rx(r"\b(?:cut(?:ting)?|burn(?:ing)?|hurt(?:ing)?|harm(?:ing)?|starv(?:e|ing)|"
                           r"punish(?:ing)?) (?:myself|yourself|my (?:arms?|wrists?|legs?|thighs?|skin))\b")),
    ("self-harm", 0.6, _rx(r"\b(?:self[- ]harm\w*|pro[- ]?ana|pro[- ]?mia|thinspo\w*|anorexi\w+|bulimi\w+|"
                           r"purg(?:e|ing)|binge and purge)\b")),
    ("self-harm", 0.4, _rx(r"\b(?:suicid\w+|kill (?:myself|yourself|themselves)|end (?:it all|my life|"
                           r"your life|their lives)|take (?:my|your) own life)\b")),
    ("self-harm", 0.25, _rx(r"\b(?:depress\w*|hopeless|worthless|no reason to live|better off dead|"
                            r"want to die|wanna die)\b")),
    # self-harm/instructions: asks how
    ("self-harm/instructions", 0.75, _rx(r"\b(?:how|ways?|methods?|best way|easiest way|painless\w*|quickest way|"
                                         r"tips?|steps?|instructions?|how many|how much)\b.{0,50}\b(?:kill (?:myself|"
                                         r"yourself)|suicide|overdos\w+|od\b|cut (?:myself|my wrists?|deep)|"
                                         r"slit (?:my )?wrists?|hang (?:myself|yourself)|purg\w+|starv\w+|"
                                         r"to die|hide (?:my )?(?:cuts|scars)|lethal dose)")),
    ("self-harm/instructions", 0.5, _rx(r"\b(?:lethal dose|how many (?:pills|tablets|sleeping pills)|"
                                        r"painless(?:ly)? (?:death|die|way))\b")),
    # self-harm/intent: first person, future or present
    ("self-harm/intent", 0.75, _rx(r"\b(?:i'm|i am|i will|i'll|i want to|i wanna|i plan to|i'm going to|"
                                   r"i am going to|i'm gonna|going to|planning to|ready to|about to)\b.{0,25}"
                                   r"\b(?:kill myself|end (?:it all|my life|it)|take my (?:own )?life|"
                                   r"jump off|hang myself|take them all|overdose|die tonight|not wake up|"
                                   r"slit my)\b")),
    ("self-harm/intent", 0.6, _rx(r"\b(?:(?:i )?(?:don't|do not|dont) want to (?:live|be alive|exist|wake up)|"
                                  r"suicide note|goodbye note|written the note|nobody will miss me|"
                                  r"no one will miss me|my last (?:day|night|message))\b")),
    # sexual
    ("sexual", 0.65, _rx(r"\b(?:sex scene|explicit sex\w*|erotic\w*|porn\w*|horny|orgasm\w*|blowjob|"
                         r"masturbat\w*|smut\w*|nsfw|talk dirty|dirty talk|dirty story|make me (?:wet|hard)|"
                         r"in bed in (?:\w+ )?detail|intercourse)\b")),
    ("sexual", 0.35, _rx(r"\b(?:sexy|naked|nude|seduc\w*|lewd|kinky|fetish\w*|aroused?|strip\w*|"
                         r"genitals?|penis|vagina|boobs?|dick|cock|pussy|touching me|moan\w*)\b")),
    ("sexual", 0.3, _rx(r"\b(?:sexual\w*|sex)\b")),
    # violence
    ("violence", 0.75, _rx(r"\b(?:make|build|assemble|craft)\b.{0,15}\b(?:bombs?|pipe bombs?|explosives?|"
                           r"molotov\w*|napalm|ied)\b")),
    ("violence", 0.7, _rx(rf"\b(?:kill|murder|shoot|stab|poison|strangle|behead|torture|kidnap|assassinate|"
                          rf"attack|beat up|run over|blow up)\b.{{0,12}}\b{_PERSON}")),
    ("violence", 0.55, _rx(r"\b(?:tortur\w+|murder\w*|massacre\w*|mass shooting|school shooting|"
                           r"blow up|shoot up|bloodbath|kill(?:ing)? spree|assassinat\w+|stabb\w+)\b")),
    ("violence", 0.35, _rx(r"\b(?:weapons?|guns?|knife|knives|poison\w*|bomb\w*|explosives?|without getting "
                           r"caught)\b")),
    # violence/graphic: gore
    ("violence/graphic", 0.45, _rx(r"\b(?:gor(?:e|y)|guts|entrails|intestines|disembowel\w*|mutilat\w+|"
                                   r"dismember\w*|decapitat\w+|gouged|eviscerat\w+|skin(?:s|ned|ning)? "
                                   r"(?:\w+ )?alive|torn off|ripped (?:off|out|open)|split (?:\w+ )?open|"
                                   r"brains? (?:splatter\w*|spill\w*)|blood (?:everywhere|spray\w*|gush\w*|pool\w*)|"
                                   r"crushed|corpse|severed|flesh)\b")),
    ("violence/graphic", 0.3, _rx(r"\b(?:blood(?:y)?|bones?|in (?:gory|graphic|gruesome|vivid) detail|gruesome)\b")),
]

_SEXUAL_RX = _rx(rf"\b{_SEXUAL}\b")
_MINOR_RX = _rx(rf"\b{_MINOR}\b")
_GROUP_RX = _rx(rf"\b{_GROUP}\b")
_GROUP_CONTEMPT_RX = _rx(r"\b(?:vermin|rats|cockroaches|parasites|animals|savages|subhuman|disease|plague|"
                         r"degenerates?|disgusting|filth\w*|inferior|stupid|dumb|terrorists?|criminals|rapists|"
                         r"ruining|invading|invaders?|don't belong|should(?:n't| not) be allowed|"
                         r"all (?:the )?same|can't be trusted|evil|hate (?:all )?)\b")
_GROUP_VIOLENCE_RX = _rx(r"\b(?:exterminat\w+|round (?:them )?up|rounded up|get rid of|wipe (?:them )?out|"
                         r"kill(?:ed|ing)?|burn(?:ed|ing)? (?:down|them)|attack\w*|shoot|hang(?:ed)?|lynch\w*|"
                         r"deport and|gas(?:sed)?|militia|cleanse|purge|eradicat\w+|eliminat\w+|destroy)\b")


def score_text(text: str) -> dict[str, float]:
    """Scores in [0, 1] for the eleven categories from the keyword rules alone."""
    text = text.lower()
    miss = {c: 1.0 for c in CATEGORIES}
    for cat, weight, rx in RULES:
        if rx.search(text):
            miss[cat] *= 1.0 - weight
    # Compound cues: each needs two things in the same message.
    if _GROUP_RX.search(text):
        if _GROUP_CONTEMPT_RX.search(text):
            miss["hate"] *= 1.0 - 0.7
        if _GROUP_VIOLENCE_RX.search(text):
            miss["hate/threatening"] *= 1.0 - 0.75
    if _SEXUAL_RX.search(text) and _MINOR_RX.search(text):
        miss["sexual/minors"] *= 1.0 - 0.85
    return {c: 1.0 - miss[c] for c in CATEGORIES}


@lru_cache(maxsize=1)
def rule_count() -> int:
    return len(RULES) + 3
