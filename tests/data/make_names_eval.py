"""Writes names_eval.jsonl (held-out test) and names_dev.jsonl (calibration/dev).

Hand-written templates and synthetic private persons in 7 languages (en, es, fr, de, it,
pt, ru). Each item: `lang`, `split`, `kind` (`cue` when the sentence has a name cue like
"my name is" / a greeting / a title, `nocue` for a name in running text, `clean` for text
whose capitalised names are public figures or fictional characters and must stay),
`messages` (a conversation: user/assistant turns), and `names` (the private-person
mentions, exact substrings, each to be redacted; for `clean` items it is empty).
Two-message items also check that the same person keeps the same NAME_n.

Test and dev use disjoint templates and disjoint persons; nothing was tuned on the test
file. Run: .venv/bin/python tests/data/make_names_eval.py
"""

import json
from pathlib import Path

# ----------------------------------------------------------------------------- test
# persons: (given, surname); Russian persons carry (nominative, dative, genitive) given forms
TEST_PERSONS = {
    "en": [("Megan", "Doyle"), ("Trevor", "Banks"), ("Priya", "Raman"), ("Caleb", "Fischer"),
           ("Nadia", "Okafor"), ("Declan", "Hughes"), ("Erin", "Walsh"), ("Marcus", "Bell")],
    "es": [("Lucía", "Fernández"), ("Javier", "Ortega"), ("Marta", "Castillo"), ("Álvaro", "Ruiz"),
           ("Inés", "Navarro"), ("Diego", "Herrera"), ("Carmen", "Vidal"), ("Sergio", "Molina")],
    "fr": [("Camille", "Dubois"), ("Julien", "Moreau"), ("Élodie", "Lefèvre"), ("Mathieu", "Garnier"),
           ("Sophie", "Marchand"), ("Thibault", "Rousseau"), ("Aurélie", "Fontaine"), ("Nicolas", "Perrin")],
    "de": [("Jonas", "Becker"), ("Lena", "Hoffmann"), ("Tobias", "Krüger"), ("Katrin", "Wolf"),
           ("Florian", "Schäfer"), ("Miriam", "Brandt"), ("Henrik", "Vogel"), ("Sabine", "Lorenz")],
    "it": [("Giulia", "Rinaldi"), ("Matteo", "Conti"), ("Chiara", "Gallo"), ("Davide", "Marchetti"),
           ("Federica", "Longo"), ("Lorenzo", "Ferri"), ("Silvia", "Barbieri"), ("Alessio", "Monti")],
    "pt": [("João", "Carvalho"), ("Beatriz", "Almeida"), ("Rafael", "Teixeira"), ("Larissa", "Moura"),
           ("Tiago", "Ribeiro"), ("Mariana", "Lopes"), ("Gustavo", "Pires"), ("Camila", "Duarte")],
    "ru": [(("Дмитрий", "Дмитрию", "Дмитрия"), "Соколов"), (("Анна", "Анне", "Анны"), "Кузнецова"),
           (("Сергей", "Сергею", "Сергея"), "Волков"), (("Ольга", "Ольге", "Ольги"), "Морозова"),
           (("Никита", "Никите", "Никиты"), "Лебедев"), (("Екатерина", "Екатерине", "Екатерины"), "Павлова"),
           (("Игорь", "Игорю", "Игоря"), "Смирнов"), (("Татьяна", "Татьяне", "Татьяны"), "Новикова")],
}

# {G} given name, {S} surname, {F} "given surname"; Russian: {G}, {Gd} dative, {Gg} genitive.
# A template is (kind, [user message, optional assistant reply, optional user message]).
TEST_TEMPLATES = {
    "en": [
        ("nocue", ["Tell {G} that the meeting moved to 3pm and ask if that still works."]),
        ("nocue", ["Can you write a short birthday message for {F}? We have worked together for six years."]),
        ("nocue", ["{G} keeps forgetting to update the shared budget sheet. How do I bring it up politely?"]),
        ("nocue", ["Draft an email to the landlord explaining that {F} will take over the lease in March."]),
        ("cue", ["Hi, my name is {F} and I need help with a cover letter for a nursing job."]),
        ("cue", ["Write a reply starting with 'Dear {G},' to thank them for the interview yesterday."]),
        ("nocue", ["Summarise this: {F} called at noon, the package was damaged, and a refund is expected.",
                   "Here is a summary: a call at noon reported a damaged package and a refund is pending.",
                   "Also add that {G} wants a replacement instead."]),
        ("nocue", ["I had a fight with {G} about the holiday plans. How can we compromise?"]),
    ],
    "es": [
        ("nocue", ["Dile a {G} que la reunión se cambió al jueves por la tarde."]),
        ("nocue", ["¿Puedes escribir un mensaje de cumpleaños para {F}? Es mi compañera de piso."]),
        ("nocue", ["{F} no ha pagado su parte del alquiler este mes, ¿cómo se lo recuerdo sin discutir?"]),
        ("cue", ["Hola, me llamo {F} y necesito ayuda con mi currículum."]),
        ("nocue", ["Redacta un correo para avisar de que {G} estará de baja hasta el lunes."]),
        ("cue", ["Escribe una carta que empiece con 'Querido {G},' para darle las gracias por la cena."]),
        ("nocue", ["Mañana tengo una entrevista con {F} para el puesto de analista. ¿Qué preguntas me hará?",
                   "Probablemente te preguntará por tu experiencia y tus objetivos.",
                   "Vale, y si {G} me pregunta por el salario, ¿qué digo?"]),
        ("nocue", ["Ayer discutí con {G} por las vacaciones. ¿Cómo puedo arreglarlo?"]),
    ],
    "fr": [
        ("nocue", ["Dis à {G} que la réunion est repoussée à jeudi matin."]),
        ("nocue", ["Peux-tu écrire un petit mot d'anniversaire pour {F} ? C'est ma voisine depuis dix ans."]),
        ("nocue", ["{F} a oublié de rendre le rapport, comment le lui rappeler poliment ?"]),
        ("cue", ["Bonjour, je m'appelle {F} et j'ai besoin d'aide pour ma lettre de motivation."]),
        ("nocue", ["Rédige un e-mail pour prévenir l'équipe que {G} sera absent toute la semaine."]),
        ("cue", ["Écris une lettre qui commence par 'Cher {G},' pour le remercier de son accueil."]),
        ("nocue", ["J'ai rendez-vous avec {F} demain pour parler du projet. Que dois-je préparer ?",
                   "Prépare un résumé de l'avancement et une liste des risques.",
                   "D'accord, et si {G} demande le budget, que dois-je répondre ?"]),
        ("nocue", ["Je me suis disputé avec {G} à propos des vacances. Comment faire la paix ?"]),
    ],
    "de": [
        ("nocue", ["Sag {G}, dass das Meeting auf Donnerstag verschoben wurde."]),
        ("nocue", ["Kannst du eine kurze Geburtstagsnachricht für {F} schreiben? Wir arbeiten seit Jahren zusammen."]),
        ("nocue", ["{F} hat die Miete diesen Monat nicht überwiesen. Wie spreche ich das an?"]),
        ("cue", ["Hallo, ich heiße {F} und brauche Hilfe bei meinem Lebenslauf."]),
        ("nocue", ["Schreib eine E-Mail an das Team, dass {G} bis Montag krank ist."]),
        ("cue", ["Schreib einen Brief, der mit 'Liebe {G},' beginnt, um mich für das Geschenk zu bedanken."]),
        ("nocue", ["Morgen habe ich ein Gespräch mit {F} über die neue Stelle. Worauf soll ich achten?",
                   "Bereite Beispiele aus deinen bisherigen Projekten vor.",
                   "Und wenn {G} nach meinem Gehaltswunsch fragt?"]),
        ("nocue", ["Ich hatte Streit mit {G} wegen des Urlaubs. Wie können wir uns einigen?"]),
    ],
    "it": [
        ("nocue", ["Di' a {G} che la riunione è stata spostata a giovedì pomeriggio."]),
        ("nocue", ["Puoi scrivere un messaggio di auguri per {F}? È la mia collega da cinque anni."]),
        ("nocue", ["{F} non ha ancora pagato la sua parte dell'affitto, come glielo ricordo?"]),
        ("cue", ["Ciao, mi chiamo {F} e ho bisogno di aiuto con il mio curriculum."]),
        ("nocue", ["Scrivi una mail per avvisare che {G} sarà in ferie fino a lunedì."]),
        ("cue", ["Scrivi una lettera che inizi con 'Caro {G},' per ringraziarlo della cena."]),
        ("nocue", ["Domani ho un colloquio con {F} per il posto da analista. Cosa mi chiederà?",
                   "Probabilmente ti chiederà della tua esperienza e dei tuoi obiettivi.",
                   "E se {G} mi chiede quanto voglio guadagnare?"]),
        ("nocue", ["Ho litigato con {G} per le vacanze. Come posso fare pace?"]),
    ],
    "pt": [
        ("nocue", ["Avise {G} que a reunião foi adiada para quinta-feira."]),
        ("nocue", ["Você pode escrever uma mensagem de aniversário para {F}? Trabalhamos juntos há anos."]),
        ("nocue", ["{F} ainda não pagou a parte do aluguel, como eu cobro sem brigar?"]),
        ("cue", ["Olá, meu nome é {F} e preciso de ajuda com meu currículo."]),
        ("nocue", ["Escreva um e-mail avisando que {G} vai ficar de licença até segunda."]),
        ("cue", ["Escreva uma carta que comece com 'Querida {G},' para agradecer o jantar."]),
        ("nocue", ["Amanhã tenho uma entrevista com {F} para a vaga de analista. O que devo preparar?",
                   "Prepare exemplos dos seus projetos anteriores.",
                   "E se {G} perguntar sobre salário?"]),
        ("nocue", ["Briguei com {G} por causa das férias. Como faço as pazes?"]),
    ],
    "ru": [
        ("nocue", ["Передай {Gd}, что встреча перенесена на четверг."]),
        ("nocue", ["Напиши короткое поздравление с днём рождения для {Gg} {Sg}."]),
        ("nocue", ["{G} {S} опять не оплатил свою часть аренды. Как ему напомнить?"]),
        ("cue", ["Здравствуйте, меня зовут {G} {S}, и мне нужна помощь с резюме."]),
        ("nocue", ["Составь письмо команде о том, что {G} будет на больничном до понедельника."]),
        ("cue", ["Напиши письмо, которое начинается словами 'Дорогой {G},' с благодарностью за ужин."]),
        ("nocue", ["Завтра у меня собеседование, его проводит {G} {S}. Что мне подготовить?",
                   "Подготовьте примеры своих прошлых проектов.",
                   "А если {G} спросит о зарплате?"]),
        ("nocue", ["Я поссорился с {Gg} из-за отпуска. Как помириться?"]),
    ],
}

# public figures and fictional characters: capitalised names that must NOT be redacted
TEST_CLEAN = {
    "en": ["Write a short essay comparing the leadership styles of Abraham Lincoln and Winston Churchill.",
           "Who would win a chess match, Sherlock Holmes or Hercule Poirot? Explain in a fun way.",
           "Summarise the plot of Harry Potter and the Chamber of Secrets in five sentences.",
           "What did Marie Curie discover, and why did it matter for medicine?",
           "Explain Isaac Newton's three laws of motion to a ten-year-old."],
    "es": ["Resume la vida de Gabriel García Márquez y sus novelas más famosas.",
           "¿Qué pintó Pablo Picasso durante su época azul?",
           "Escribe un diálogo entre Don Quijote y Sancho Panza sobre los teléfonos móviles.",
           "¿Por qué es importante Simón Bolívar en la historia de América Latina?",
           "Compara a Lionel Messi y Cristiano Ronaldo en tres puntos."],
    "fr": ["Résume la vie de Victor Hugo et cite ses œuvres principales.",
           "Qu'a découvert Louis Pasteur et pourquoi est-ce important ?",
           "Écris une courte histoire où Astérix rencontre le Petit Prince.",
           "Explique le rôle de Napoléon Bonaparte dans l'histoire de l'Europe.",
           "Compare les philosophies de Jean-Paul Sartre et d'Albert Camus."],
    "de": ["Fasse das Leben von Johann Wolfgang von Goethe in fünf Sätzen zusammen.",
           "Was hat Albert Einstein mit der Relativitätstheorie gezeigt?",
           "Schreibe eine Geschichte, in der Harry Potter Sherlock Holmes trifft.",
           "Welche Rolle spielte Angela Merkel in der Eurokrise?",
           "Erkläre, warum Ludwig van Beethoven trotz Taubheit komponieren konnte."],
    "it": ["Riassumi la vita di Leonardo da Vinci e le sue invenzioni principali.",
           "Perché Dante Alighieri è considerato il padre della lingua italiana?",
           "Scrivi una breve storia in cui Pinocchio incontra Topolino.",
           "Che cosa ha scoperto Galileo Galilei con il suo telescopio?",
           "Confronta Giuseppe Verdi e Giacomo Puccini come compositori."],
    "pt": ["Resuma a vida de Fernando Pessoa e seus heterônimos.",
           "Quem foi Pedro Álvares Cabral e o que ele fez em 1500?",
           "Escreva uma história em que o Saci encontra o Harry Potter.",
           "Explique por que Machado de Assis é tão importante na literatura brasileira.",
           "Compare Pelé e Ayrton Senna como ídolos do esporte."],
    "ru": ["Кратко перескажи биографию Льва Толстого.",
           "Почему Юрий Гагарин считается героем?",
           "Напиши рассказ, где Шерлок Холмс встречает Остапа Бендера.",
           "Что открыл Дмитрий Менделеев?",
           "Сравни творчество Пушкина и Лермонтова."],
}

# ----------------------------------------------------------------------------- dev
DEV_PERSONS = {
    "en": [("Olivia", "Hart"), ("Samuel", "Kerr"), ("Tomasz", "Nowak"), ("Grace", "Pham")],
    "es": [("Pablo", "Serrano"), ("Elena", "Gil"), ("Raúl", "Campos"), ("Nuria", "Prieto")],
    "fr": [("Antoine", "Girard"), ("Claire", "Bonnet"), ("Maxime", "Faure"), ("Pauline", "Mercier")],
    "de": [("Lukas", "Braun"), ("Anja", "Zimmermann"), ("Stefan", "Hartmann"), ("Julia", "Krause")],
    "it": [("Luca", "Esposito"), ("Martina", "Romano"), ("Simone", "Colombo"), ("Elisa", "Ricci")],
    "pt": [("Pedro", "Santos"), ("Ana", "Oliveira"), ("Bruno", "Costa"), ("Juliana", "Rocha")],
    "ru": [(("Алексей", "Алексею", "Алексея"), "Иванов"), (("Мария", "Марии", "Марии"), "Петрова"),
           (("Павел", "Павлу", "Павла"), "Орлов"), (("Ирина", "Ирине", "Ирины"), "Козлова")],
}
DEV_TEMPLATES = {
    "en": [("nocue", ["Remind {G} to bring the projector to the workshop."]),
           ("nocue", ["Write a thank-you note to {F} for covering my shift."]),
           ("cue", ["My name is {F}. Please proofread my motivation letter."]),
           ("nocue", ["{G} said the invoice was wrong. What should I reply?"])],
    "es": [("nocue", ["Recuérdale a {G} que traiga el proyector."]),
           ("nocue", ["Escribe una nota de agradecimiento a {F} por cubrir mi turno."]),
           ("cue", ["Mi nombre es {F}. Corrige mi carta de presentación, por favor."]),
           ("nocue", ["{G} dice que la factura está mal. ¿Qué le contesto?"])],
    "fr": [("nocue", ["Rappelle à {G} d'apporter le projecteur à l'atelier."]),
           ("nocue", ["Écris un mot de remerciement à {F} pour avoir pris mon service."]),
           ("cue", ["Mon nom est {F}. Peux-tu relire ma lettre ?"]),
           ("nocue", ["{G} dit que la facture est fausse. Que répondre ?"])],
    "de": [("nocue", ["Erinnere {G} daran, den Beamer mitzubringen."]),
           ("nocue", ["Schreib eine Dankeskarte an {F}, weil sie meine Schicht übernommen hat."]),
           ("cue", ["Mein Name ist {F}. Bitte korrigiere mein Anschreiben."]),
           ("nocue", ["{G} sagt, die Rechnung ist falsch. Was antworte ich?"])],
    "it": [("nocue", ["Ricorda a {G} di portare il proiettore al workshop."]),
           ("nocue", ["Scrivi un biglietto di ringraziamento a {F} per aver coperto il mio turno."]),
           ("cue", ["Il mio nome è {F}. Correggi la mia lettera di presentazione."]),
           ("nocue", ["{G} dice che la fattura è sbagliata. Cosa rispondo?"])],
    "pt": [("nocue", ["Lembre {G} de trazer o projetor para o workshop."]),
           ("nocue", ["Escreva um bilhete de agradecimento para {F} por cobrir meu turno."]),
           ("cue", ["Me chamo {F}. Revise minha carta de apresentação, por favor."]),
           ("nocue", ["{G} disse que a fatura está errada. O que respondo?"])],
    "ru": [("nocue", ["Напомни {Gd} принести проектор на семинар."]),
           ("nocue", ["Напиши благодарность для {Gg} {Sg} за то, что подменила меня."]),
           ("cue", ["Меня зовут {G} {S}. Проверь моё сопроводительное письмо."]),
           ("nocue", ["{G} говорит, что счёт неверный. Что ответить?"])],
}
DEV_CLEAN = {
    "en": ["Explain why Charles Darwin's theory of evolution was controversial.",
           "Write a limerick about Frodo Baggins and his ring."],
    "es": ["¿Quién fue Miguel de Cervantes?", "Explica la obra de Frida Kahlo."],
    "fr": ["Qui était Jeanne d'Arc ?", "Résume les Misérables de Victor Hugo et le rôle de Jean Valjean."],
    "de": ["Wer war Martin Luther?", "Erkläre die Musik von Johann Sebastian Bach."],
    "it": ["Chi era Giuseppe Garibaldi?", "Spiega la pittura di Michelangelo Buonarroti."],
    "pt": ["Quem foi Luís de Camões?", "Explique a obra de Clarice Lispector."],
    "ru": ["Кто такой Фёдор Достоевский?", "Расскажи про Петра Первого."],
}

_RU_SURNAME_GEN = {"Соколов": "Соколова", "Кузнецова": "Кузнецовой", "Волков": "Волкова",
                   "Морозова": "Морозовой", "Лебедев": "Лебедева", "Павлова": "Павловой",
                   "Смирнов": "Смирнова", "Новикова": "Новиковой", "Иванов": "Иванова",
                   "Петрова": "Петровой", "Орлов": "Орлова", "Козлова": "Козловой"}


def fill(template: str, given, surname: str) -> tuple[str, list[str]]:
    """The text and the name mentions it contains, in order."""
    if isinstance(given, tuple):
        nom, dat, gen = given
        values = {"G": nom, "Gd": dat, "Gg": gen, "S": surname, "Sg": _RU_SURNAME_GEN[surname],
                  "F": f"{nom} {surname}"}
    else:
        values = {"G": given, "S": surname, "F": f"{given} {surname}"}
    mentions, out, i = [], [], 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(template[i:])
            break
        k = template.index("}", j)
        out.append(template[i:j])
        key = template[j + 1:k]
        value = values[key]
        out.append(value)
        # "{G} {S}" (and its genitive) is one mention of the full name
        if key in ("S", "Sg") and mentions and out[-2] == " " and out[-3] == mentions[-1]:
            mentions[-1] = f"{mentions[-1]} {value}"
        else:
            mentions.append(value)
        i = k + 1
    return "".join(out), mentions


def build(persons, templates, clean, split):
    items = []
    for lang in persons:
        for t_idx, (kind, turns) in enumerate(templates[lang]):
            # each template gets 4 persons (all of them on the dev set's 4), rotating
            people = persons[lang]
            chosen = [people[(t_idx + k) % len(people)] for k in range(4)] if len(people) > 4 else people
            for given, surname in chosen:
                messages, names = [], []
                for n, turn in enumerate(turns):
                    text, mentions = fill(turn, given, surname)
                    messages.append({"role": "user" if n % 2 == 0 else "assistant", "content": text})
                    names += [{"message_index": n, "text": m} for m in mentions]
                items.append({"id": f"{split}-{lang}-{len(items):03d}", "lang": lang, "split": split,
                              "kind": kind, "messages": messages, "names": names})
        for text in clean[lang]:
            items.append({"id": f"{split}-{lang}-{len(items):03d}", "lang": lang, "split": split,
                          "kind": "clean", "messages": [{"role": "user", "content": text}], "names": []})
    return items


def main() -> None:
    here = Path(__file__).parent
    for name, items in (("names_eval.jsonl", build(TEST_PERSONS, TEST_TEMPLATES, TEST_CLEAN, "test")),
                        ("names_dev.jsonl", build(DEV_PERSONS, DEV_TEMPLATES, DEV_CLEAN, "dev"))):
        with open(here / name, "w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        mentions = sum(len(i["names"]) for i in items)
        print(f"{name}: {len(items)} items, {mentions} name mentions")


if __name__ == "__main__":
    main()
