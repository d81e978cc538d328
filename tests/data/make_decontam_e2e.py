"""Write tests/data/decontam_e2e.jsonl: a chat log with benchmark items planted in it.

An end-to-end evaluation set for `decontam check` (issue #14, "Why"): ordinary chat requests
that match no benchmark item, and, planted among them, verbatim pastes, hand-written
rephrasings (inside chat framing, some with typos), translations (es/de/fr/zh) and same-topic
look-alikes that ask for a different task, of HumanEval and MT-bench (first turn) items.
`rephrase_hard` rows say the task in other words, without the item's function name, examples
or key phrases. Every row has `id`, `text`, `kind` (unrelated | verbatim | rephrase |
rephrase_hard | translation | lookalike) and `label` (`humaneval:HumanEval/N`, `mt_bench:N` or "" for none); the check reads
only `id` and `text`. Written by hand for this set; never used to fit anything.

    python tests/data/make_decontam_e2e.py          # rewrites the .jsonl next to this file

Verbatim rows need the benchmark texts: HumanEval from the installed package, MT-bench from
the testbed copy (`MT_BENCH`, or $DECONTAM_E2E_MT_BENCH).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "decontam_e2e.jsonl"
MT_BENCH = Path(os.environ.get("DECONTAM_E2E_MT_BENCH", "/work/shared/testbed/fastchat/mt_bench/question.jsonl"))
SEED = 14

# (benchmark item, chat text) written by hand from the item's task, not its wording.
REPHRASE = [
    ("humaneval:HumanEval/0", "hey can you help, my teacher gave me this: write a python function that takes a list of floats and a threshold and returns True if any two of the numbers are closer to each other than the threshold, otherwise False"),
    ("humaneval:HumanEval/2", "I need a function truncate_number(x) that gets a positive float and gives back only the part after the decimal point, e.g. 3.5 -> 0.5. python pls"),
    ("humaneval:HumanEval/4", "Python question. Given a list of numbers compute the mean absolute deviation, i.e. the average of the absolute differences between each element and the mean of the list. how would i write that?"),
    ("humaneval:HumanEval/8", "can u write sum_product: given a list of ints return a tuple (sum, product). empty list should give sum 0 and product 1"),
    ("humaneval:HumanEval/12", "From a list of strings return the longest one. If several have the same max length return the first of them, and return None when the list is empty. Type hints please."),
    ("humaneval:HumanEval/14", "my homework:\nWrite all_prefixes(string) that returns the list of all prefixes of the string ordered from the shortest to the longest, so 'abc' gives ['a', 'ab', 'abc'].\nthanks!!"),
    ("humaneval:HumanEval/16", "how do I count how many different characters a string has, ignoring upper/lower case? like 'xyzXYZ' should be 3 and 'Jerry' 4. need it as a python function count_distinct_characters"),
    ("humaneval:HumanEval/18", "Write a function how_many_times(string, substring) that counts how often the substring occurs in the string, counting overlapping occurences too ('aaaa','aa' -> 3)."),
    ("humaneval:HumanEval/22", "Given a list of arbitrary python values, keep only the ones that are integers. filter_integers(['a', 3.14, 5]) should return [5]. can you implement it"),
    ("humaneval:HumanEval/24", "write largest_divisor(n): for a number n, find the biggest number smaller than n that divides n evenly. example: 15 -> 5"),
    ("humaneval:HumanEval/26", "Exercise from my course: from a list of integers remove every element that appears more than once, keeping the order of what is left. [1,2,3,2,4] -> [1,3,4]. Python."),
    ("humaneval:HumanEval/28", "quick one: python function concatenate that joins a list of strings into one string, [] -> '' and ['a','b','c'] -> 'abc'"),
    ("humaneval:HumanEval/30", "I have to write get_positive(l) which returns only the positive numbers from the list, for example [-1, 2, -4, 5, 6] gives [2, 5, 6]. How?"),
    ("humaneval:HumanEval/34", "Write a function unique(l) that returns the sorted unique elements of a list, e.g. [5, 3, 5, 2, 3, 3, 9, 0, 123] -> [0, 2, 3, 5, 9, 123]"),
    ("humaneval:HumanEval/36", "Coding task: fizz_buzz(n) should return how many times the digit 7 shows up in the integers below n that are divisble by 11 or by 13. fizz_buzz(50)=0, fizz_buzz(78)=2, fizz_buzz(79)=3"),
    ("humaneval:HumanEval/40", "Can you help me with triples_sum_to_zero? It takes a list of ints and returns True when there are three distinct elements in it that add up to zero, False otherwise."),
    ("humaneval:HumanEval/42", "python: return a new list with every element increased by 1. incr_list([1, 2, 3]) == [2, 3, 4]"),
    ("humaneval:HumanEval/44", "write change_base(x, base) that converts the number x into the given base (base is less than 10) and returns the result as a string. change_base(8, 2) should be '1000', change_base(8, 3) '22'"),
    ("humaneval:HumanEval/52", "my teacher gave us this: below_threshold(l, t) returns True if all the numbers in list l are under the threshold t. [1, 2, 4, 10] with 100 -> True, [1, 20, 4, 10] with 5 -> False"),
    ("humaneval:HumanEval/58", "Need a function common(l1, l2) returning the sorted unique elements that both lists have in common, e.g. common([5, 3, 2, 8], [3, 2]) = [2, 3]"),
    ("mt_bench:81", "hey can you write a fun travel blog post about my recent trip to Hawaii? talk about the cultural experiences and the attractions people must see"),
    ("mt_bench:84", "I need to write an email to convince my friend, who is introverted and hates speaking in public, to be a guest speaker at a local event. Make it persuasive, deal with the objections she'll have, and keep it short."),
    ("mt_bench:87", "Please write a short story that grabs the reader and starts with this sentence: The old abandoned house at the end of the street held a secret that no one had ever discovered."),
    ("mt_bench:90", "fix the grammar in this paragraph pls: She didn't remembre where is her purse, so I thinks its in the car but he's say it's on kitchen table but he are not sure, and then they asked me to looking for it, she's say, \"Can you?\", and I responds with, \"Maybe, but ain't no sure,\" and he not heard me, and, \"What?\", he asks, \"Did you found it?\"."),
    ("mt_bench:93", "Act like a doctor who comes up with creative remedies for different illnesses: traditional medicine, herbal treatments and natural alternatives, and consider the patient's age, lifestyle and medical history. First case: a patient with intense abdominal discomfort."),
    ("mt_bench:96", "Pretend you are an ML engineer explaining complicated machine learning ideas in simple words to customers with no technical background, so they trust our products. Start with: what is a language model, and is it trained on labeled or unlabeled data?"),
    ("mt_bench:99", "You're a mathematician and a poet who always writes proofs as short rhyming poems under 10 lines. Prove that the square root of 2 is an irrational number."),
    ("mt_bench:102", "Riddle my friend sent me: there's a beautiful red house on your left, a hypnotic greenhouse on your right and an attractive heated pink place in front of you. So where is the White House??"),
    ("mt_bench:108", "which of these words doesnt belong with the others: tyre, steering wheel, car, engine"),
    ("mt_bench:111", "A triangle has its corners at (0, 0), (-1, 1) and (3, 3). what's its area?"),
    ("mt_bench:114", "If I roll two dice, what's the probability that the total I get is at least 3?"),
    ("mt_bench:117", "how many integers satisfy the inequality |x + 5| < 10 ?"),
    ("mt_bench:120", "Let f(x) = 4x^3 - 9x - 14. What is f(2)? show your steps"),
    ("mt_bench:123", "Can you make a simple HTML web page with a button; when the user clicks it, it should show a random joke chosen from a list of 4 jokes."),
    ("mt_bench:126", "Interview prep: write a function that finds the median of two sorted arrays of different sizes using O(1) space and O(n) time."),
    ("mt_bench:129", "Given two sorted lists with sizes m and n, implement a function that returns the kth smallest element of their union, in linear time."),
    ("mt_bench:141", "In quantum physics what does superposition mean, and how is it related to quantum entanglement?"),
    ("mt_bench:144", "what is the central dogma of molecular biology, which processes does it involve, and who gave it that name?"),
    ("mt_bench:150", "How did the Alps and the Rhine River shape settlement and agriculture in Western Europe? Give me three impacts."),
    ("mt_bench:159", "I'm travelling to Japan for work next month. What business etiquette norms should I know about when doing business there?"),
]

# Harder: the task in other words, without the item's function name, examples or key phrases.
REPHRASE_HARD = [
    ("humaneval:HumanEval/1", "i get a string like '( ) (( )) (( )( ))' made of several balanced bracket clusters with spaces in between. I want to split it into the individual top-level clusters as a list of strings and drop the spaces. how?"),
    ("humaneval:HumanEval/3", "Bank account starts empty. I get a list of deposits (positive) and withdrawals (negative) in order. Write code telling me whether the account ever goes into the red at any point."),
    ("humaneval:HumanEval/5", "how do I put a separator value in between each pair of neighbouring items of a python list of ints? e.g. separator 0 would turn 7 8 9 into 7 0 8 0 9"),
    ("humaneval:HumanEval/9", "For a sequence of ints I need, at each position, the biggest value seen so far (running maximum) as a new list. Python please, no numpy."),
    ("humaneval:HumanEval/11", "two equal-length strings of zeros and ones, I need to combine them bit by bit with exclusive or and get the result back as a string of 0/1. quickest way in python?"),
    ("humaneval:HumanEval/13", "Implement Euclid's algorithm: given two whole numbers return the largest integer that divides both of them."),
    ("humaneval:HumanEval/19", "Input: words for digits separated by spaces ('seven two nine'). Output: the same words reordered by their numeric value, smallest first, as one string. Can you code this?"),
    ("humaneval:HumanEval/21", "Given at least two floats, linearly map them so the minimum ends up at 0 and the maximum at 1 (min-max normalisation). Write it as a python function returning the new list."),
    ("mt_bench:83", "I'm planning an article that pits two well-known phones against each other. Can you sketch the structure for me, with section headings and the main points to compare features, speed and how they feel to use?"),
    ("mt_bench:85", "Create a memorable, one-of-a-kind character and describe them with vivid imagery and inventive wording, in under two paragraphs."),
    ("mt_bench:86", "give me a paragraph that puts the reader in the middle of a busy market - what they smell, hear and see."),
    ("mt_bench:88", "I want the first paragraph of a story where the main character wakes up and discovers they can now travel through time. Make it hook the reader."),
    ("mt_bench:91", "Talk to me as if you were Elon Musk for the rest of this chat, copying the way he speaks. First: why should humanity go to Mars?"),
    ("mt_bench:97", "Be my maths tutor: I'll send equations or concepts and you explain them in easy terms with step by step solutions. First up, I don't understand how probability works."),
    ("mt_bench:101", "Brain teaser: you're running a race and you pass the runner in 2nd place. What place are you in now, and where is the runner you passed?"),
    ("mt_bench:103", "Thomas is in great health yet he goes to the hospital every single day. Why might that be?"),
]

TRANSLATION = [
    ("humaneval:HumanEval/0", "es", "Escribe una función en Python que reciba una lista de números decimales y un umbral, y devuelva True si hay dos números en la lista más cercanos entre sí que el umbral dado, y False en caso contrario."),
    ("humaneval:HumanEval/12", "de", "Schreibe eine Python-Funktion, die aus einer Liste von Strings den längsten zurückgibt. Haben mehrere dieselbe Länge, gib den ersten zurück; ist die Liste leer, gib None zurück."),
    ("humaneval:HumanEval/26", "fr", "Écris une fonction Python qui, à partir d'une liste d'entiers, supprime tous les éléments qui apparaissent plus d'une fois, en gardant l'ordre des éléments restants. Exemple : [1, 2, 3, 2, 4] donne [1, 3, 4]."),
    ("humaneval:HumanEval/36", "zh", "写一个Python函数 fizz_buzz(n)，返回小于 n 且能被 11 或 13 整除的整数中数字 7 出现的次数。例如 fizz_buzz(50) 返回 0，fizz_buzz(78) 返回 2。"),
    ("mt_bench:81", "es", "Escribe una entrada de blog de viajes atractiva sobre un viaje reciente a Hawái, destacando las experiencias culturales y las atracciones imprescindibles."),
    ("mt_bench:111", "de", "Die Eckpunkte eines Dreiecks liegen bei (0, 0), (-1, 1) und (3, 3). Wie groß ist der Flächeninhalt des Dreiecks?"),
    ("mt_bench:141", "fr", "En physique quantique, qu'est-ce que la superposition, et quel est son lien avec le phénomène d'intrication quantique ?"),
    ("mt_bench:159", "zh", "在日本做生意时，有哪些商务礼仪规范需要注意？"),
]

# Same topic as a benchmark item, a different task: must NOT be flagged. Label: the item it resembles.
LOOKALIKE = [
    ("humaneval:HumanEval/0", "write a python function that takes a list of floats and returns the two numbers that are farthest apart from each other, as a tuple (smaller, larger)"),
    ("humaneval:HumanEval/4", "Python: given a list of numbers compute the standard deviation (population, not sample). how would I write that without numpy?"),
    ("humaneval:HumanEval/8", "can u write a function that takes a list of ints and returns the sum of the squares of the odd numbers only"),
    ("humaneval:HumanEval/12", "From a list of strings return the shortest one that contains a vowel; return an empty string if there is none."),
    ("humaneval:HumanEval/14", "Write a function all_suffixes(string) that returns every suffix of the string from longest to shortest, in Rust."),
    ("humaneval:HumanEval/18", "Write a function that checks whether a string contains a given substring at least twice without overlapping, in JavaScript."),
    ("humaneval:HumanEval/24", "write smallest_prime_factor(n): return the smallest prime that divides n, or n itself when n is prime"),
    ("humaneval:HumanEval/30", "I have to write a function that returns the index of the first negative number in a list, or -1 if there is none. How?"),
    ("humaneval:HumanEval/44", "write a function that converts a roman numeral string like 'MCMXCIV' into an integer"),
    ("humaneval:HumanEval/58", "Need a function that merges two sorted lists into one sorted list keeping duplicates, without calling sort()."),
    ("mt_bench:81", "Can you give me a packing list for a two-week trip to Hawaii in December with kids?"),
    ("mt_bench:84", "Write a polite email declining an invitation to speak at a local event because of a schedule conflict."),
    ("mt_bench:87", "What are some tips for renovating an old abandoned house on a tight budget?"),
    ("mt_bench:99", "Explain in plain prose, step by step, why the square root of 4 is rational and the square root of 3 is not."),
    ("mt_bench:111", "How do I find the perimeter of a rectangle whose corners are at (0, 0), (4, 0), (4, 2) and (0, 2)?"),
    ("mt_bench:114", "I'm designing a board game. Should I use one twenty-sided die or two ten-sided dice, and how does that change the feel?"),
    ("mt_bench:123", "Why does my HTML button not do anything when I click it? I put onclick in the div instead of the button."),
    ("mt_bench:141", "Recommend three popular-science books about quantum physics for a high school student."),
    ("mt_bench:150", "Plan a 5-day hiking itinerary in the Swiss Alps with a day boat trip on the Rhine."),
    ("mt_bench:159", "Translate 'thank you for your business, we look forward to working with you' into Japanese and explain the politeness level."),
]

VERBATIM = ["humaneval:HumanEval/6", "humaneval:HumanEval/20", "humaneval:HumanEval/46", "humaneval:HumanEval/56",
            "humaneval:HumanEval/10", "mt_bench:82", "mt_bench:105", "mt_bench:135", "mt_bench:147", "mt_bench:156"]
FRAMES = ["{t}", "hey can you help, my teacher gave me this:\n{t}", "{t}\n\nthanks in advance!",
          "Please solve the following.\n\n{t}", "{t}"]

# Ordinary requests: hand-written, plus templates with varied values.
PLAIN = [
    "What can I cook tonight with chickpeas, spinach and a can of coconut milk?",
    "How long should I boil an egg for a runny yolk?",
    "Give me a vegetarian lasagna recipe for 6 people.",
    "My sourdough starter smells like nail polish remover, is it dead?",
    "Suggest a weekly meal plan for someone training for a half marathon.",
    "What's the difference between baking soda and baking powder?",
    "Can I freeze cooked rice and how do I reheat it safely?",
    "Write a short toast for my sister's wedding, she loves sailing and bad puns.",
    "Help me write a cover letter for a junior data analyst position at a logistics company.",
    "Rewrite this sentence to sound more formal: hey guys the meeting got moved to thursday",
    "Write an email to my landlord asking to fix the heating, it has been broken for a week.",
    "Draft a message to my team announcing that I'm leaving the company at the end of the month.",
    "How do I ask my manager for a raise without sounding pushy?",
    "Summarize the plot of Pride and Prejudice in five sentences.",
    "What are good houseplants for a dark apartment?",
    "How often should I water a cactus in winter?",
    "My tomato leaves are turning yellow from the bottom, what's wrong?",
    "Explain how a mortgage offset account works.",
    "Is it better to pay off my student loan early or invest in an index fund?",
    "What's a good way to start running if I'm completely out of shape?",
    "Give me a 20 minute bodyweight workout I can do in a hotel room.",
    "How do I get my toddler to sleep through the night?",
    "Suggest names for a golden retriever puppy.",
    "Why does my cat knock things off the table?",
    "How do I remove a red wine stain from a wool carpet?",
    "What's the best way to clean a cast iron pan?",
    "Plan a 3-day itinerary for Lisbon on a budget.",
    "Is it worth getting a rail pass for two weeks in Italy?",
    "What should I pack for a week of hiking in Scotland in May?",
    "Which is cheaper for getting around Tokyo, a Suica card or day passes?",
    "How do I deal with jet lag after flying from New York to Singapore?",
    "Recommend some sci-fi novels similar to The Expanse.",
    "What board games are good for a group of 8 adults?",
    "Write a haiku about the first snow in the city.",
    "Write a limerick about a cat who hates Mondays.",
    "Help me name my bakery, it's in a small town by the sea.",
    "How do I change a flat tire on a bicycle?",
    "My car makes a squeaking noise when I brake, what could it be?",
    "What's the difference between a Roth IRA and a traditional IRA?",
    "Explain the offside rule in football like I'm ten.",
    "How do I fix 'fatal: refusing to merge unrelated histories' in git?",
    "In pandas, how do I group by two columns and count rows?",
    "Why does my React component re-render twice in development?",
    "How can I make a Docker image smaller for a Node app?",
    "What does 'segmentation fault (core dumped)' mean in C?",
    "Write a bash one-liner that renames all .jpeg files in a folder to .jpg.",
    "How do I connect to PostgreSQL from Go and run a query with parameters?",
    "Explain the difference between a process and a thread.",
    "How do I set up a Python virtual environment on Windows?",
    "My SQL query with LEFT JOIN returns duplicates, how do I fix it?",
    "What's the difference between == and === in JavaScript?",
    "How do I center a div horizontally and vertically with CSS?",
    "Write a regular expression that matches a UK postcode.",
    "How do I read a CSV file in Rust with serde?",
    "Why is my Kubernetes pod stuck in CrashLoopBackOff?",
    "How do I undo the last commit in git but keep the changes?",
    "Explain what a closure is in JavaScript with a small example.",
    "What is the time complexity of inserting into a Python dict?",
    "How can I profile a slow Python script?",
    "Write a SQL query that finds customers who ordered in January but not in February.",
    "What are good questions to ask at the end of a job interview?",
    "How do I politely tell a coworker they talk too loudly on calls?",
    "Give me ideas for a 10th anniversary gift.",
    "What's the history of the Eiffel Tower in a nutshell?",
    "Why is the sky red at sunset?",
    "How do vaccines train the immune system?",
    "What causes the northern lights?",
    "Help me understand my electricity bill, what is a standing charge?",
    "Translate 'where is the train station' into Italian.",
    "Correct my Spanish: Yo soy cansado porque trabajé mucho ayer.",
]
TEMPLATES = [
    ("How do I make {dish} without {tool}?",
     {"dish": ["pizza dough", "risotto", "banana bread", "pad thai", "hummus", "pancakes", "ramen broth", "granola"],
      "tool": ["an oven", "a blender", "a stand mixer", "a wok", "a food processor", "a scale"]}),
    ("I'm going to {city} for {days} days in {month}. What should I not miss?",
     {"city": ["Porto", "Kraków", "Hanoi", "Mexico City", "Reykjavik", "Seville", "Vancouver", "Marrakech", "Tallinn", "Osaka"],
      "days": ["2", "3", "4", "5", "7"], "month": ["March", "June", "October", "December"]}),
    ("Write a short email to {who} about {what}.",
     {"who": ["my child's teacher", "a client", "the HR department", "my neighbour", "the conference organisers", "my gym"],
      "what": ["a missed deadline", "a billing mistake", "rescheduling our meeting", "a noise complaint", "cancelling my membership", "a parking problem"]}),
    ("In {lang}, how do I {task}?",
     {"lang": ["Python", "JavaScript", "Java", "C#", "Go", "Kotlin", "Ruby", "PHP"],
      "task": ["read a JSON file", "send an HTTP POST request", "parse a date string with a timezone", "run two tasks concurrently",
               "write unit tests with mocks", "log to a file with rotation", "read environment variables", "format a number with thousands separators"]}),
    ("What's a good {kind} for {occasion}?",
     {"kind": ["wine", "playlist", "dessert", "gift", "outfit", "icebreaker game"],
      "occasion": ["a summer barbecue", "a first date", "a retirement party", "a baby shower", "a team offsite", "Thanksgiving dinner"]}),
    ("Can you explain {topic} in simple terms?",
     {"topic": ["inflation", "compound interest", "how GPS works", "the stock market", "black holes", "photosynthesis", "blockchain",
                "how a bill becomes law", "climate change", "how noise-cancelling headphones work", "the greenhouse effect", "credit scores"]}),
]
N_UNRELATED = 240


def _benchmark_texts() -> dict[str, str]:
    from decontam.benchmarks import load_benchmark

    he = load_benchmark("humaneval")
    out = {f"humaneval:{i}": t for i, t in zip(he.ids, he.texts)}
    for line in MT_BENCH.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        out[f"mt_bench:{q['question_id']}"] = q["turns"][0]
    return out


def unrelated(rng: random.Random) -> list[str]:
    """PLAIN plus template fills, distinct, `N_UNRELATED` in all (seeded)."""
    texts = list(PLAIN)
    seen = set(texts)
    while len(texts) < N_UNRELATED:
        template, slots = TEMPLATES[rng.randrange(len(TEMPLATES))]
        t = template.format(**{k: rng.choice(v) for k, v in sorted(slots.items())})
        if t not in seen:
            seen.add(t)
            texts.append(t)
    return texts


def build() -> list[dict[str, str]]:
    rng = random.Random(SEED)
    bench = _benchmark_texts()
    rows = [{"text": t, "kind": "unrelated", "label": ""} for t in unrelated(rng)]
    for n, label in enumerate(VERBATIM):
        rows.append({"text": FRAMES[n % len(FRAMES)].format(t=bench[label].strip()), "kind": "verbatim", "label": label})
    rows += [{"text": t, "kind": "rephrase", "label": label} for label, t in REPHRASE]
    rows += [{"text": t, "kind": "rephrase_hard", "label": label} for label, t in REPHRASE_HARD]
    rows += [{"text": t, "kind": "translation", "label": label} for label, _lang, t in TRANSLATION]
    rows += [{"text": t, "kind": "lookalike", "label": label} for label, t in LOOKALIKE]
    for r in rows:
        assert r["label"] == "" or r["label"] in bench, r["label"]
    rng.shuffle(rows)
    return [{"id": f"chat-{i:04d}", **r} for i, r in enumerate(rows)]


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
