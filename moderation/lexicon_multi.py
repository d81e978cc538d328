"""Tier-1 keyword rules for Spanish, French, German, Italian, Portuguese, Russian and Chinese.

Same model as `moderation.lexicon` (English): weighted patterns per OpenAI category,
combined by noisy-or; 0.6+ flags on its own, 0.3-0.5 sends the message to the LLM tier.
All languages run on every message (no language detection needed: the words barely
collide across these languages, and a Spanish insult inside an English message is still
one). Categories covered: harassment (insults and slurs aimed at someone),
harassment/threatening (threats to a person), hate (contempt for a group: a group word
near a contempt word), self-harm (intent), sexual (explicit requests) and violence
(instructions for weapons).

Written for this project. Multilingual profanity packages on PyPI were checked first:
`glin-profanity` 4.1.0 and `safetext` 0.3.3 (both MIT) ship LDNOOBW-style word lists that
mix insults with neutral words ("asesinato", "drogas", "infierno", "Heroína", "haciendo el
amor") and have no category, no threat or hate cues and no Italian (safetext); on our dev
set they flag benign messages ("escribe una novela sobre un asesinato"). Measured figures
in docs/moderation.md. The rules here were tuned on `tests/data/moderation_multi_dev.jsonl`
only; `tests/data/moderation_multi_eval.jsonl` is the held-out test.

A quoted word next to a word about words ("the word 'puta'", «con», “笨蛋”) is a mention,
not a use: it is removed before matching (`strip_mentions`).
"""

from __future__ import annotations

import re

from moderation.taxonomy import CATEGORIES


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # text is lower-cased first (see moderation.lexicon)


_B = r"(?<![\w])"  # word start that also works before Cyrillic and accented letters
_E = r"(?![\w])"

# ------------------------------------------------------------------ per-language word lists
# Strong insults and slurs: flag alone (0.6). Directed mild insults: 0.35 (LLM band).
_INSULTS_STRONG = {
    "es": r"gilipollas|jilipollas|hij[oa] de (?:puta|perra)|hijoputa|cabr[oó]n|cabrona|pendej[oa]s?|imb[eé]cil(?:es)?|"
          r"idiotas?|put[oa]s?|zorra|subnormal|mierda|mam[oó]n|capullo|malparid[oa]|huev[oó]n|cag[oó]n|"
          r"me cago en|vete a la mierda|pedazo de (?:mierda|idiota|basura)|perra|maric[oó]n|retrasad[oa]|"
          r"est[uú]pid[oa]|in[uú]til|fracasad[oa]|escoria|basura humana|lameculos|chupapollas|coñ[oa]",
    "fr": r"connard|connasse|conne|salope|encul[eé]e?s?|enfoir[eé]e?s?|abruti[e]?s?|d[eé]bile|cr[eé]tin[e]?s?|"
          r"p[eé]tasse|pute|putain de \w+|nique ta m[eè]re|ntm|ta gueule|ferme ta gueule|va te faire foutre|"
          r"batard|bâtard|merdeux|une merde|de la merde|fils de pute|pauvre type|tar[eé]e?|"
          r"(?:gros|pauvre|esp[eè]ce de|sale|quel|vieux|petit) con|(?:es|est|t'es) (?:un|une) (?:con|conne)|"
          r"idiot[e]? fini[e]?|esp[eè]ce d'(?:idiot|abruti|imb[eé]cile)|imb[eé]cile|casse-toi",
    "de": r"arschloch|arschl[oö]cher|vollidiot|idiot(?:in|en)?|schlampe|wichser|hurensohn|hure|fotze|spast|"
          r"missgeburt|penner|versager(?:in)?|fick dich|verpiss dich|halt die fresse|leck mich|du arsch|"
          r"bl[oö]de kuh|dumme kuh|dummkopf|trottel|depp|scheißkerl|scheisskerl|drecksau|schwuchtel|"
          r"mongo|behindert(?:er|e)?|kackbratze|lauch|du opfer|auf die fresse|stück scheiße",
    "it": r"coglion[ea]|stronz[oaie]|vaffanculo|fanculo|pezzo di merda|deficiente|cretin[oa]|idiota|imbecille|"
          r"figli[oa] di puttana|puttana|troia|zoccola|bastard[oa]|frocio|ritardat[oa]|vai a cagare|"
          r"testa di cazzo|rompicoglioni|fallit[oa]|merda|cazzo",
    "pt": r"idiota|merda|tomar no cu|ot[aá]ri[oa]|filh[oa] da puta|puta|escrot[oa]|babaca|imbecil|"
          r"vai se foder|foda-se|caralho|vadia|piranha|arrombad[oa]|viado|retardad[oa]|fracassad[oa]|"
          r"(?:seu|sua) (?:burr[oa]|merda|lixo|nojent[oa]|in[uú]til|anta|idiota)|cuz[aã]o|desgra[cç]ad[oa]|porra",
    "ru": r"идиот\w*|придур\w*|сук[аиуе]|суч\w*|ху[йяеёи]\w*|на хер|нахер|урод\w*|дебил\w*|мудак\w*|мудил\w*|"
          r"ублюд\w*|говн\w*|бля\w*|пизд\w*|еба\w*|ёба\w*|уёб\w*|уеб\w*|шлюх\w*|тупиц\w*|тупой|тупая|"
          r"дур[аы]\b|дурак\w*|козёл|козел|отвали|заткнись|неудачни\w*|кретин\w*|имбецил\w*|чмо|лох\w*|"
          r"мраз[ьи]\w*|тварь|твари|гнид\w*|падл\w*|пошёл ты|пошел ты|конч\w+",
    "zh": r"傻逼|煞笔|白痴|废物|王八蛋|操你|肏你|草你妈|你妈的|他妈的|蠢货|蠢猪|混蛋|贱人|婊子|神经病|"
          r"脑子有病|脑残|傻屌|人渣|去死|滚开|滚蛋|垃圾东西|狗东西|畜生|杂种|贱货|滚出去",
}
_THREATS = {
    "es": r"te (?:voy a|vamos a) (?:matar|partir|romper|reventar|dar una paliza|quemar|encontrar)|te mato|"
          r"te voy a (?:hacer|dejar)|s[eé] d[oó]nde vives|te (?:parto|rompo|reviento) (?:la cara|la boca|las piernas)|"
          r"vas a morir|est[aá]s muert[oa]|te vas a arrepentir",
    "fr": r"je vais te (?:tuer|buter|d[eé]foncer|casser|crever|[eé]clater|p[eé]ter|retrouver|faire la peau)|"
          r"je (?:te )?tue|je sais o[uù] tu (?:habites|vis)|tu vas (?:le regretter|mourir|crever)|t'es mort|"
          r"(?:casser|p[eé]ter|[eé]clater) la gueule",
    "de": r"(?:bringe?|bring) ich dich um|ich bring dich um|ich (?:werde|will) dich (?:umbringen|t[oö]ten|fertigmachen|"
          r"finden)|ich wei(?:ß|ss),? wo du wohnst|ich schlag dich|schlag dich tot|ich (?:werde|will) dir wehtun|"
          r"(?:hau|schlag) dir (?:auf|in) die fresse|du bist tot|das wirst du bereuen|ich mach dich kalt",
    "it": r"ti (?:ammazzo|uccido|spacco|rompo|faccio (?:fuori|pentire|male)|vengo a prendere|ammazzer[oò])|"
          r"so dove (?:abiti|vivi)|sei mort[oa]|te ne pentirai",
    "pt": r"(?:eu )?te mato|vou te (?:matar|pegar|dar uma surra|quebrar|bater|encontrar)|"
          r"vou quebrar (?:sua|a tua|tua) cara|sei onde (?:voc[eê] mora|tu moras)|voc[eê] vai se arrepender|"
          r"voc[eê] est[aá] mort[oa]|quebrar a (?:sua|tua) cara",
    "ru": r"я тебя (?:убью|урою|прикончу|найду|порежу|закопаю|уничтожу)|убью тебя|(?:сломаю|переломаю) тебе|"
          r"я тебе (?:сломаю|набью|разобью|вырву)|морду набью|знаю,? где ты живёшь|знаю,? где ты живешь|"
          r"тебе конец|ты покойник|пожалеешь",
    "zh": r"杀了你|弄死你|揍死你|打死你|打断你的腿|让你死|宰了你|砍死你|你死定了|我知道你住在哪|等着瞧",
}
_GROUPS = {
    "es": r"inmigrantes|extranjeros|refugiados|gitanos|moros|negros|judíos|musulmanes|maricones|sudacas|panchitos",
    "fr": r"immigr[eé]s|[eé]trangers|r[eé]fugi[eé]s|arabes|noirs|juifs|musulmans|roms|gitans|migrants|bougnoules",
    "de": r"ausl[aä]nder|fl[uü]chtlinge|migranten|juden|muslime|kanaken|zigeuner|schwarze|asylanten",
    "it": r"immigrati|stranieri|rifugiati|zingari|negri|ebrei|musulmani|extracomunitari|migranti",
    "pt": r"imigrantes|estrangeiros|refugiados|ciganos|negros|judeus|mu[cç]ulmanos|nordestinos|migrantes",
    "ru": r"мигрант\w*|приезж\w*|беженц\w*|цыган\w*|евре\w*|черн\w+ |чурк\w*|хач\w*|нерусск\w*|иностранц\w*",
    "zh": r"外地人|难民|黑人|外国人|穆斯林|犹太人|乡下人|移民",
}
_CONTEMPT = {
    "es": r"basura|escoria|par[aá]sitos|ratas|animales|plaga|cucarachas|ladrones|inferiores|hay que echarlos|"
          r"fuera de (?:aqu[ií]|espa[nñ]a)|no deber[ií]an",
    "fr": r"parasites|vermine|racaille|d[eé]chets|ordures|rats|animaux|sauvages|inf[eé]rieurs|les virer|dehors|"
          r"cafards",
    "de": r"dreck|abschaum|ungeziefer|parasiten|ratten|tiere|pack|gesindel|abgeschoben|raus|minderwertig",
    "it": r"feccia|parassiti|spazzatura|schifo|topi|animali|bestie|cacciati|fuori dall'italia|inferiori",
    "pt": r"lixo|esc[oó]ria|parasitas|ratos|animais|praga|expulsos|inferiores|vermes",
    "ru": r"гряз\w*|мусор|паразит\w*|отброс\w*|скот\w*|крыс\w*|выгнать|вон из|животн\w*|нелюд\w*",
    "zh": r"垃圾|寄生虫|滚出|畜生|赶走|低等|害虫|蟑螂",
}
_SELF_HARM = {
    "es": r"quiero (?:suicidarme|morir|matarme)|me voy a (?:suicidar|matar)|suicidarme|quitarme la vida",
    "fr": r"je veux (?:mourir|me suicider|me tuer)|me suicider|en finir avec (?:la|ma) vie|me foutre en l'air",
    "de": r"ich will (?:sterben|mich umbringen|nicht mehr leben)|mich umbringen|mir das leben nehmen",
    "it": r"voglio (?:morire|uccidermi|suicidarmi)|uccidermi|suicidarmi|togliermi la vita",
    "pt": r"quero (?:morrer|me matar|me suicidar)|me matar|me suicidar|tirar minha (?:pr[oó]pria )?vida",
    "ru": r"хочу (?:умереть|покончить с собой|убить себя)|покончить с собой|убить себя|не хочу жить",
    "zh": r"我想死|想自杀|我要自杀|不想活了|结束自己的生命",
}
_SEXUAL = {
    "es": r"porno|follar|foll[aá]rmela|sexo expl[ií]cito|escena de sexo|relato er[oó]tico|mamada|c[aá]chonda",
    "fr": r"porno|baiser avec|sc[eè]ne de sexe|histoire [eé]rotique|sexe explicite|fellation|excit[eé]e sexuellement",
    "de": r"porno|ficken|sexszene|erotische geschichte|expliziter sex|blasen|geil auf",
    "it": r"porno|scopare|scena di sesso|racconto erotico|sesso esplicito|pompino",
    "pt": r"porn[oô]|transar|foder com|cena de sexo|conto er[oó]tico|sexo expl[ií]cito|boquete",
    "ru": r"порно|трах\w+|секс-сцен\w*|эротическ\w+ рассказ|откровенн\w+ секс|минет",
    "zh": r"色情|做爱|黄色小说|性爱场景|口交|av片",
}
_VIOLENCE = {
    "es": r"(?:c[oó]mo )?(?:hacer|fabricar|construir) una bomba|c[oó]ctel molotov|explosivo casero",
    "fr": r"(?:comment )?(?:fabriquer|faire|construire) une bombe|cocktail molotov|explosif artisanal",
    "de": r"(?:wie )?(?:baue|bauen|herstellen) (?:ich )?eine bombe|bombe bauen|molotowcocktail|sprengstoff herstellen",
    "it": r"(?:come )?(?:costruire|fare|fabbricare) una bomba|molotov|esplosivo artigianale",
    "pt": r"(?:como )?(?:fazer|fabricar|construir) uma bomba|coquetel molotov|explosivo caseiro",
    "ru": r"(?:как )?(?:сделать|собрать|изготовить) бомбу|коктейль молотова|самодельн\w+ взрывчатк\w*",
    "zh": r"制作炸弹|自制炸药|怎么做炸弹|燃烧瓶",
}
LANGUAGES = tuple(_INSULTS_STRONG)


_LATIN = ("es", "fr", "de", "it", "pt")
_CYRILLIC_RX = _rx(r"[а-яё]")
_CJK_RX = _rx(r"[\u4e00-\u9fff]")


def _join(table: dict[str, str], langs: tuple[str, ...]) -> re.Pattern[str]:
    # Latin/Cyrillic alternatives get word edges; Chinese has no spaces, so none there.
    return _rx("|".join(rf"(?:{table[lang]})" if lang == "zh" else rf"{_B}(?:{table[lang]}){_E}" for lang in langs))


_CATEGORY_TABLES = (("harassment", 0.6, _INSULTS_STRONG), ("harassment/threatening", 0.7, _THREATS),
                    ("self-harm/intent", 0.7, _SELF_HARM), ("sexual", 0.65, _SEXUAL), ("violence", 0.75, _VIOLENCE))
# one alternation per category and script: Russian rules run only on text with Cyrillic
# letters, Chinese ones only on text with CJK characters (most messages have neither)
RULES: dict[str, list[tuple[str, float, re.Pattern[str]]]] = {
    script: [(cat, w, _join(table, langs)) for cat, w, table in _CATEGORY_TABLES]
    for script, langs in (("latin", _LATIN), ("cyrillic", ("ru",)), ("cjk", ("zh",)))
}
_HATE = {script: (_join(_GROUPS, langs), _join(_CONTEMPT, langs))
         for script, langs in (("latin", _LATIN), ("cyrillic", ("ru",)))}
# Chinese has no word edges and long passages (history texts) mention groups: the group
# and the contempt word must be close
_GROUP_CONTEMPT_ZH = _rx(rf"(?:{_GROUPS['zh']}).{{0,12}}(?:{_CONTEMPT['zh']})|(?:{_CONTEMPT['zh']}).{{0,12}}(?:{_GROUPS['zh']})")

_META = _rx(r"(?:palabra|palavra|mot|wort|parola|word|term|término|termine|begriff|слово|слова|词|字|"
            r"etimolog|étymolog|etymolog|этимолог|origem|origine|origen|herkunft|significa|bedeutet|означает|意思)")
# a quote opens after a space (so the apostrophe of "l'origine" does not) and closes before a non-letter
_QUOTED = _rx(r"(?:(?<=\s)|^|(?<=[(:]))[\"'«“„‚‘「『][^\"'«»“”„‚‘’「」『』\n]{1,24}[\"'»”“‘’」』](?!\w)")


def strip_mentions(text: str) -> str:
    """Drop short quoted spans when the text talks about words: "la palabra 'puta'" is a mention."""
    if _META.search(text):
        return _QUOTED.sub(" ", text)
    return text


def score_text(text: str) -> dict[str, float]:
    """Scores in [0, 1] for the eleven categories from the multilingual rules alone."""
    text = strip_mentions(text.lower())
    miss = {c: 1.0 for c in CATEGORIES}
    scripts = ["latin"]
    if _CYRILLIC_RX.search(text):
        scripts.append("cyrillic")
    if _CJK_RX.search(text):
        scripts.append("cjk")
    hate = False
    for script in scripts:
        for cat, weight, rx in RULES[script]:
            if rx.search(text):
                miss[cat] *= 1.0 - weight
        if script in _HATE:
            group_rx, contempt_rx = _HATE[script]
            hate = hate or bool(group_rx.search(text) and contempt_rx.search(text))
        else:
            hate = hate or bool(_GROUP_CONTEMPT_ZH.search(text))
    if hate:
        miss["hate"] *= 1.0 - 0.7
    return {c: 1.0 - miss[c] for c in CATEGORIES}
