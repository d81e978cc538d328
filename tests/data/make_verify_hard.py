"""Writes tests/data/verify_hard.jsonl: the pair verifier's hard test set. Never fitted on.

Every request below, its paraphrase, its translation, its same-topic decoy and its
template twin were written by hand for this file; none comes from the fitting script's
templates (benchmarks/fit_verifier.py) or the test bed. Five kinds of pair, each anchored on
the original request `a`:

  typo_rephrase   a hand paraphrase with 1-3 typos added     -> same request (True)
  partial         a contiguous piece (55-85 % of the words)  -> same request (True)
  translated      a hand translation of a paraphrase (zh, es, de, fr, it, pt) -> True
  decoy           same topic, a different task               -> not the same (False)
  twin            same template, other values (numbers, names, identifiers) -> False

    python tests/data/make_verify_hard.py        # rewrites verify_hard.jsonl (deterministic)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# (original, paraphrase, (lang, translation of the paraphrase), decoy, twin)
ITEMS = [
    ("How do I reverse a linked list in place in Java without using extra memory?",
     "What's the way to reverse a singly linked list in Java in place, with O(1) extra space?",
     ("es", "¿Cómo invierto una lista enlazada en Java sin usar memoria adicional?"),
     "How do I detect a cycle in a linked list in Java?",
     "How do I reverse a linked list in place in Python without using extra memory?"),
    ("Write a Python function `count_vowels(s)` that returns how many vowels the string s contains.",
     "Implement count_vowels(s) in Python: it should give back the number of vowels in s.",
     ("de", "Schreibe eine Python-Funktion count_vowels(s), die zählt, wie viele Vokale der String s enthält."),
     "Write a Python function `count_words(s)` that returns how many words the string s contains.",
     "Write a Python function `count_consonants(s)` that returns how many consonants the string s contains."),
    ("A train leaves at 9:15 and travels 240 km at 80 km/h. At what time does it arrive?",
     "If a train departs at 9:15 and covers 240 km at a speed of 80 km/h, when will it get there?",
     ("fr", "Un train part à 9h15 et parcourt 240 km à 80 km/h. À quelle heure arrive-t-il ?"),
     "A train leaves at 9:15 and travels 240 km at 80 km/h. How much fuel does it use?",
     "A train leaves at 7:40 and travels 360 km at 90 km/h. At what time does it arrive?"),
    ("What were the main consequences of the Treaty of Versailles for Germany?",
     "Which major effects did the Versailles Treaty have on Germany after 1919?",
     ("zh", "凡尔赛条约对德国产生了哪些主要后果？"),
     "Who were the main negotiators of the Treaty of Versailles?",
     "What were the main consequences of the Treaty of Tordesillas for Portugal?"),
    ("Can you suggest a vegetarian dinner I can cook in 20 minutes with chickpeas and spinach?",
     "Any ideas for a quick veggie dinner, about 20 minutes, using chickpeas and spinach?",
     ("it", "Puoi suggerirmi una cena vegetariana da preparare in 20 minuti con ceci e spinaci?"),
     "How many calories are in a cup of chickpeas and spinach?",
     "Can you suggest a vegetarian dinner I can cook in 45 minutes with lentils and kale?"),
    ("Explain the difference between TCP and UDP for a networking exam.",
     "For my networking exam, how does TCP differ from UDP?",
     ("es", "Para un examen de redes, explica la diferencia entre TCP y UDP."),
     "Explain how the TCP three-way handshake works.",
     "Explain the difference between IPv4 and IPv6 for a networking exam."),
    ("I invest 5000 euros at 4% compound interest per year. How much will I have after 8 years?",
     "With 5000 EUR earning 4 percent a year, compounded yearly, what's the total after 8 years?",
     ("de", "Ich lege 5000 Euro zu 4 % Zinseszins pro Jahr an. Wie viel habe ich nach 8 Jahren?"),
     "I invest 5000 euros at 4% compound interest per year. How much tax do I owe on the gains?",
     "I invest 1200 euros at 6% compound interest per year. How much will I have after 15 years?"),
    ("Write a haiku about autumn leaves falling in Kyoto.",
     "Compose a haiku on falling autumn leaves in Kyoto.",
     ("fr", "Écris un haïku sur les feuilles d'automne qui tombent à Kyoto."),
     "Write a short essay about the history of Kyoto's temples.",
     "Write a haiku about spring rain falling in Lisbon."),
    ("Fix this SQL: SELECT name, COUNT(*) FROM orders GROUP BY customer_id; it errors out.",
     "My query SELECT name, COUNT(*) FROM orders GROUP BY customer_id fails, how do I fix it?",
     ("pt", "Corrija este SQL: SELECT name, COUNT(*) FROM orders GROUP BY customer_id; ele dá erro."),
     "How do I add an index on customer_id in the orders table?",
     "Fix this SQL: SELECT title, SUM(price) FROM books GROUP BY author_id; it errors out."),
    ("What is the boiling point of water at 3000 meters altitude?",
     "At an altitude of 3000 m, at what temperature does water boil?",
     ("zh", "在海拔3000米的地方，水的沸点是多少？"),
     "Why does water boil faster in a pressure cooker?",
     "What is the boiling point of water at 1500 meters altitude?"),
    ("Summarize the causes of the 2008 financial crisis in three bullet points.",
     "Give me three bullet points on what caused the financial crisis of 2008.",
     ("es", "Resume en tres puntos las causas de la crisis financiera de 2008."),
     "How did the 2008 financial crisis affect unemployment in Spain?",
     "Summarize the causes of the 1929 stock market crash in five bullet points."),
    ("My React component re-renders every time the parent updates. How do I stop that?",
     "How can I prevent a React child component from re-rendering whenever its parent changes?",
     ("de", "Meine React-Komponente rendert bei jeder Aktualisierung des Elternteils neu. Wie verhindere ich das?"),
     "How do I pass data from a child component to its parent in React?",
     "My Vue component re-renders every time the store updates. How do I stop that?"),
    ("Translate 'the meeting is postponed until Thursday' into Japanese.",
     "How would you say 'the meeting has been pushed back to Thursday' in Japanese?",
     ("fr", "Traduis « la réunion est reportée à jeudi » en japonais."),
     "What are the days of the week in Japanese?",
     "Translate 'the meeting is postponed until Monday' into Korean."),
    ("How many moles are in 36 grams of water?",
     "Calculate the number of moles in 36 g of H2O.",
     ("it", "Quante moli ci sono in 36 grammi di acqua?"),
     "What is the molar mass of sodium chloride?",
     "How many moles are in 88 grams of carbon dioxide?"),
    ("Write a bash one-liner that deletes all .log files older than 7 days in /var/tmp.",
     "Give me a single bash command to remove .log files in /var/tmp that are more than 7 days old.",
     ("es", "Escribe un comando bash de una línea que borre todos los archivos .log de más de 7 días en /var/tmp."),
     "Write a bash one-liner that counts the lines of all .log files in /var/tmp.",
     "Write a bash one-liner that deletes all .tmp files older than 30 days in /home/backup."),
    ("Who painted the ceiling of the Sistine Chapel and how long did it take?",
     "Which artist did the Sistine Chapel ceiling, and how many years did the work take?",
     ("zh", "西斯廷教堂的天顶画是谁画的？花了多长时间？"),
     "Where is the Sistine Chapel and can tourists visit it?",
     "Who designed the dome of St. Peter's Basilica and how long did it take?"),
    ("What's a good 4-week beginner plan to run my first 5K?",
     "I'm new to running: give me a four-week schedule to get to my first 5 km.",
     ("de", "Was ist ein guter Vier-Wochen-Plan für Anfänger, um meine ersten 5 km zu laufen?"),
     "Which running shoes are best for a beginner training for a 5K?",
     "What's a good 16-week beginner plan to run my first marathon?"),
    ("Implement binary search in C that returns the index of target or -1.",
     "Write a C function doing binary search, giving back the target's index, or -1 when it's missing.",
     ("fr", "Implémente une recherche binaire en C qui renvoie l'indice de la cible ou -1."),
     "Implement merge sort in C for an array of integers.",
     "Implement linear search in Go that returns the index of target or -1."),
    ("Is it safe to take ibuprofen together with paracetamol for a headache?",
     "Can I combine paracetamol and ibuprofen to treat a headache, or is that risky?",
     ("es", "¿Es seguro tomar ibuprofeno junto con paracetamol para el dolor de cabeza?"),
     "What is the maximum daily dose of paracetamol for adults?",
     "Is it safe to take aspirin together with warfarin for back pain?"),
    ("Write a limerick about a cat named Oliver who hates Mondays.",
     "Compose a limerick on Oliver, a cat that can't stand Mondays.",
     ("it", "Scrivi un limerick su un gatto di nome Oliver che odia il lunedì."),
     "Write a short story about a cat named Oliver who gets lost in the city.",
     "Write a limerick about a dog named Biscuit who loves Fridays."),
    ("What does the Python error 'TypeError: unhashable type: list' mean?",
     "Why does Python raise TypeError: unhashable type: 'list', and what does it mean?",
     ("zh", "Python 报错 'TypeError: unhashable type: list' 是什么意思？"),
     "How do I convert a list to a tuple in Python?",
     "What does the Python error 'KeyError: 0' mean?"),
    ("Convert 150 pounds to kilograms.",
     "How much is 150 lb in kg?",
     ("de", "Rechne 150 Pfund in Kilogramm um."),
     "Why does the UK still use pounds for body weight?",
     "Convert 72 kilograms to pounds."),
    ("Draft a polite email asking my landlord to repair the heating before Friday.",
     "Help me write a courteous message to my landlord requesting that the heating be fixed by Friday.",
     ("fr", "Rédige un e-mail poli pour demander à mon propriétaire de réparer le chauffage avant vendredi."),
     "What are my rights as a tenant if the heating is broken?",
     "Draft a polite email asking my manager to approve my vacation before June."),
    ("What is the derivative of x^3 * sin(x)?",
     "Differentiate x³·sin x with respect to x.",
     ("es", "¿Cuál es la derivada de x^3 * sen(x)?"),
     "What is the integral of x^3 * sin(x)?",
     "What is the derivative of x^5 * cos(x)?"),
    ("Recommend five science fiction novels for someone who loved Dune.",
     "I really enjoyed Dune; which five sci-fi books should I read next?",
     ("pt", "Recomende cinco romances de ficção científica para quem adorou Duna."),
     "Who wrote Dune and when was it published?",
     "Recommend three fantasy novels for someone who loved The Hobbit."),
    ("How do I center a div horizontally and vertically with CSS flexbox?",
     "With flexbox, what's the CSS to center a div both horizontally and vertically?",
     ("zh", "如何用 CSS flexbox 让一个 div 水平和垂直居中？"),
     "How do I make a div take the full height of the page with CSS?",
     "How do I center a div horizontally and vertically with CSS grid?"),
    ("Explain photosynthesis to a 10-year-old.",
     "How would you explain photosynthesis to a ten year old child?",
     ("de", "Erkläre einem zehnjährigen Kind die Photosynthese."),
     "Explain photosynthesis at a university biochemistry level with the Calvin cycle equations.",
     "Explain plate tectonics to a 6-year-old."),
    ("A rectangle has a perimeter of 56 cm and a length of 18 cm. What is its area?",
     "The perimeter of a rectangle is 56 cm and its length 18 cm; find the area.",
     ("fr", "Un rectangle a un périmètre de 56 cm et une longueur de 18 cm. Quelle est son aire ?"),
     "A rectangle has a perimeter of 56 cm and a length of 18 cm. What is its diagonal?",
     "A rectangle has a perimeter of 90 cm and a length of 25 cm. What is its area?"),
    ("Write a JavaScript function debounce(fn, delay) that delays calls until delay ms have passed.",
     "Implement debounce(fn, delay) in JS: calls should only go through after delay milliseconds without new calls.",
     ("es", "Escribe una función de JavaScript debounce(fn, delay) que retrase las llamadas hasta que pasen delay ms."),
     "What is the difference between debounce and throttle in JavaScript?",
     "Write a JavaScript function throttle(fn, limit) that runs fn at most once every limit ms."),
    ("What are the symptoms of vitamin D deficiency in adults?",
     "How does a lack of vitamin D show up in grown-ups?",
     ("it", "Quali sono i sintomi della carenza di vitamina D negli adulti?"),
     "Which foods contain the most vitamin D?",
     "What are the symptoms of iron deficiency in children?"),
    ("Give me a packing list for a 10-day hiking trip in Patagonia in March.",
     "What should I pack for ten days of trekking in Patagonia during March?",
     ("de", "Gib mir eine Packliste für eine 10-tägige Wandertour in Patagonien im März."),
     "What is the best month to see glaciers in Patagonia?",
     "Give me a packing list for a 3-day ski trip in the Alps in January."),
    ("How do I merge two dictionaries in Python 3.9 and later?",
     "In Python 3.9+, what's the way to combine two dicts into one?",
     ("zh", "在 Python 3.9 及以后版本中如何合并两个字典？"),
     "How do I sort a dictionary by value in Python?",
     "How do I merge two data frames in pandas 2.0 and later?"),
    ("What caused the fall of the Western Roman Empire in 476?",
     "Why did the Western Roman Empire collapse in the year 476?",
     ("es", "¿Qué causó la caída del Imperio romano de Occidente en 476?"),
     "Who was the last emperor of the Western Roman Empire?",
     "What caused the fall of the Byzantine Empire in 1453?"),
    ("Write a regular expression that matches a US ZIP code with optional +4 extension.",
     "Give me a regex matching US ZIP codes, optionally followed by the 4-digit extension.",
     ("fr", "Écris une expression régulière qui reconnaît un code postal américain avec l'extension +4 facultative."),
     "Write a regular expression that validates an email address.",
     "Write a regular expression that matches a UK postcode with an optional space."),
    ("My sourdough bread is too dense. What am I doing wrong?",
     "Why does my sourdough loaf keep coming out dense and heavy?",
     ("pt", "Meu pão de fermentação natural fica muito denso. O que estou fazendo de errado?"),
     "How do I make a sourdough starter from scratch?",
     "My banana bread is too dry. What am I doing wrong?"),
    ("Calculate the monthly payment on a 250000 dollar mortgage at 6.5% over 30 years.",
     "What would I pay each month on a $250,000 loan at 6.5 percent for 30 years?",
     ("de", "Berechne die monatliche Rate für eine Hypothek über 250000 Dollar zu 6,5 % über 30 Jahre."),
     "Calculate the total interest paid on a 250000 dollar mortgage at 6.5% over 30 years versus renting.",
     "Calculate the monthly payment on a 400000 dollar mortgage at 5.25% over 15 years."),
    ("Write a Rust function that checks whether a string is a palindrome, ignoring case.",
     "In Rust, implement a case-insensitive palindrome check for a string.",
     ("zh", "用 Rust 写一个函数，忽略大小写判断字符串是否为回文。"),
     "Write a Rust function that reverses the words in a sentence.",
     "Write a Kotlin function that checks whether a number is a palindrome, ignoring sign."),
    ("What is the capital of Australia and why isn't it Sydney?",
     "Why is Canberra, and not Sydney, the capital of Australia?",
     ("es", "¿Cuál es la capital de Australia y por qué no es Sídney?"),
     "What is the population of Sydney compared to Melbourne?",
     "What is the capital of Canada and why isn't it Toronto?"),
    ("How long should I steep green tea at 80 degrees Celsius?",
     "At 80 °C, for how many minutes should green tea steep?",
     ("fr", "Combien de temps faut-il infuser du thé vert à 80 degrés Celsius ?"),
     "What are the health benefits of green tea?",
     "How long should I steep black tea at 95 degrees Celsius?"),
    ("Explain what a p-value of 0.03 means in a clinical trial.",
     "In a clinical trial, how should I interpret p = 0.03?",
     ("it", "Spiega cosa significa un p-value di 0,03 in uno studio clinico."),
     "How do I calculate the sample size for a clinical trial?",
     "Explain what a confidence interval of 95% means in an opinion poll."),
    ("Write a Go program that reads a CSV file and prints the sum of the second column.",
     "In Go, read a CSV file and output the total of column two.",
     ("de", "Schreibe ein Go-Programm, das eine CSV-Datei liest und die Summe der zweiten Spalte ausgibt."),
     "Write a Go program that writes a slice of structs to a CSV file.",
     "Write a Python program that reads a JSON file and prints the maximum of the third field."),
    ("What's the difference between affect and effect?",
     "When do I use 'affect' and when 'effect'?",
     ("zh", "英语中 affect 和 effect 有什么区别？"),
     "What's the difference between who and whom?",
     "What's the difference between accept and except?"),
    ("Plan a birthday party for 12 children aged 6 with a pirate theme.",
     "Help me organise a pirate-themed birthday for twelve 6-year-olds.",
     ("es", "Planifica una fiesta de cumpleaños con temática pirata para 12 niños de 6 años."),
     "Where can I buy pirate costumes for children?",
     "Plan a birthday party for 20 teenagers aged 15 with a space theme."),
    ("Why is the sky blue during the day but red at sunset?",
     "What makes the daytime sky blue and the sunset red?",
     ("fr", "Pourquoi le ciel est-il bleu le jour mais rouge au coucher du soleil ?"),
     "Why are clouds white?",
     "Why is the ocean blue near the coast but green in the Arctic?"),
]


def typo(text: str, rng: random.Random) -> str:
    """1-3 typos: a letter replaced by its keyboard neighbour, a space dropped, or a letter repeated."""
    near = {"a": "s", "s": "d", "e": "r", "r": "t", "o": "p", "i": "u", "n": "m", "t": "y", "l": "k", "c": "v"}
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        spots = [i for i in range(2, len(chars) - 2) if chars[i].isalpha()]
        i = rng.choice(spots)
        op = rng.randrange(3)
        if op == 0 and chars[i].lower() in near:
            chars[i] = near[chars[i].lower()]
        elif op == 1 and " " in chars[i - 3 : i]:
            j = i - 3 + chars[i - 3 : i].index(" ")
            del chars[j]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def partial(text: str, rng: random.Random) -> str:
    words = text.split()
    n = max(5, int(len(words) * rng.uniform(0.55, 0.85)))
    start = rng.randint(0, max(0, len(words) - n)) if rng.random() < 0.3 else 0
    return " ".join(words[start : start + n])


def build() -> list[dict]:
    rng = random.Random(20261207)
    rows = []
    for k, (orig, para, (lang, trans), decoy, twin) in enumerate(ITEMS):
        rows.append({"id": f"{k}:typo_rephrase", "kind": "typo_rephrase", "a": orig, "b": typo(para, rng), "label": True})
        rows.append({"id": f"{k}:partial", "kind": "partial", "a": orig, "b": partial(orig, rng), "label": True})
        rows.append({"id": f"{k}:translated", "kind": "translated", "lang": lang, "a": orig, "b": trans, "label": True})
        rows.append({"id": f"{k}:decoy", "kind": "decoy", "a": orig, "b": decoy, "label": False})
        rows.append({"id": f"{k}:twin", "kind": "twin", "a": orig, "b": twin, "label": False})
    return rows


if __name__ == "__main__":
    out = Path(__file__).with_name("verify_hard.jsonl")
    with open(out, "w", encoding="utf-8") as fh:
        for row in build():
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(ITEMS)} requests, {len(ITEMS) * 5} pairs -> {out}")
