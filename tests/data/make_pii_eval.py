"""Writes pii_eval.jsonl: text with planted PII (kind, value) and hard negatives.

All values are synthetic, written or generated (seeded) for this project; card numbers
get a Luhn check digit, phone numbers are checked to be valid for their region.
Run: .venv/bin/python tests/data/make_pii_eval.py
"""

import json
import random
import string
from pathlib import Path

rng = random.Random(20261127)


def rand(chars, n):
    return "".join(rng.choice(chars) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    for check in "0123456789":
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits


def group(digits, sizes, sep):
    out, pos = [], 0
    for s in sizes:
        out.append(digits[pos:pos + s])
        pos += s
    return sep.join(out)


EMAILS = [
    "jane.doe@example.com", "j.smith+newsletter@mail.co.uk", "carlos_ruiz88@correo.es", "m.rossi@azienda.it",
    "anna-lena.schmidt@firma.de", "contact@boulangerie-dupont.fr", "wei.zhang2021@univ.edu.cn",
    "PRIYA.SHARMA@COMPANY.IN", "o.petrov@post.ru", "tanaka.hiro@example.co.jp", "joao.silva@empresa.com.br",
    "ahmed.k@mail.example.org", "lucy.w@students.uni-example.ac.uk", "bob@dev-team.io", "x_ae_12@startup.ai",
    "support+ticket-4521@helpdesk.example.net", "kim.minjun@corp.co.kr", "f.nowak@poczta.pl",
    "elif.yilmaz@sirket.com.tr", "d.jansen@bedrijf.nl", "sara.lind@foretag.se", "noreply.alerts@service.cloud",
    "mike1985@gmail.com", "lin_mei@outlook.com", "h.mueller@t-online.de", "claire.martin@orange.fr",
    "raj.patel@hospital.org", "admin@my-blog.dev", "tom.o'neil@example.com".replace("'", ""), "z@q.co",
]
EMAIL_T = [
    "Please email my landlord at {v} and tell him the rent is late.",
    "You can reach me at {v} if you have questions.",
    "Écris-moi à {v} quand tu auras fini.",
    "Mi correo es {v}, escríbeme mañana.",
    "Meine E-Mail-Adresse lautet {v}.",
    "Send the invoice to <{v}> before Friday.",
    "contact: mailto:{v}",
    "My email is {v}. Thanks!",
    "请把文件发到{v}，谢谢。",
    "Мой адрес: {v}",
]

PHONES = [
    "+1 415-555-0132", "+1 (212) 555-7890", "(646) 555-0199", "212.555.7890", "415 555 0132",
    "+44 20 7946 0958", "+44 7911 123456", "020 7946 0958", "07911 654321",
    "+49 30 12345678", "+49 151 23456789", "030 12345678", "0151 23456789",
    "+33 1 42 68 53 00", "+33 6 12 34 56 78", "06 12 34 56 78", "01 42 68 53 00",
    "+34 912 345 678", "+34 612 345 678", "+39 06 1234 5678", "+39 347 123 4567",
    "+91 98765 43210", "+91 22 2345 6789", "+55 11 91234-5678", "+55 21 2345-6789",
    "+86 138 0013 8000", "+86 10 6552 9988", "+7 495 123-45-67", "+7 916 123-45-67",
    "+81 3-1234-5678", "+81 90-1234-5678", "+61 2 9876 5432", "+61 412 345 678",
    "+52 55 1234 5678", "+31 20 123 4567", "+31 6 12345678", "+82 2-312-3456", "+82 10-1234-5678",
    "0044 20 7946 0958", "+1-800-555-0175",
]
PHONE_T = [
    "My phone is {v}.", "Call me on {v} if it fails.", "You can text me at {v} anytime after 6pm.",
    "Mi número es {v}.", "Ruf mich unter {v} an.", "Mon numéro : {v}", "WhatsApp: {v}",
    "If nobody answers, try {v} and ask for the front desk.", "我的电话是 {v}", "Телефон для связи {v}",
]

IPS = [
    "192.168.10.24", "10.0.0.5", "172.16.254.1", "203.0.113.7", "8.8.8.8", "151.101.1.69", "34.117.59.81",
    "192.168.1.1", "100.64.12.9", "198.51.100.23", "52.95.110.1", "185.199.108.153", "91.198.174.192",
    "2001:db8::8a2e:370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1ff:fe23:4567:890a",
    "2606:4700:4700::1111", "fd12:3456:789a:1::1", "2a00:1450:4001:82a::200e", "10.10.1.200",
    "172.31.5.17", "81.2.69.142", "45.33.32.156", "2001:4860:4860::8888", "192.0.2.146",
]
IP_T = [
    "Why does my server at {v} refuse ssh?", "ssh root@{v} -p 2222 gives me 'connection refused'.",
    "Open http://{v}:8080/admin in the browser.", "My public IP is {v}, can you whitelist it?",
    "nginx logs show lots of requests from {v}.", "Configure the DNS to point to {v}.",
    "ping {v} works but curl times out", "La IP de mi router es {v}.",
]

CARDS = [
    "4111 1111 1111 1111", "5555555555554444", "3782 822463 10005", "6011-1111-1111-1117",
    "3530111333300000", "3056 930902 5904",
]
for prefix, length, sizes, sep in [
    ("4", 16, (4, 4, 4, 4), " "), ("4", 16, (4, 4, 4, 4), "-"), ("4", 16, (16,), ""), ("51", 16, (4, 4, 4, 4), " "),
    ("53", 16, (16,), ""), ("55", 16, (4, 4, 4, 4), "-"), ("2221", 16, (4, 4, 4, 4), " "), ("2720", 16, (16,), ""),
    ("34", 15, (4, 6, 5), " "), ("37", 15, (15,), ""), ("6011", 16, (4, 4, 4, 4), " "), ("65", 16, (16,), ""),
    ("3528", 16, (4, 4, 4, 4), " "), ("62", 16, (4, 4, 4, 4), " "), ("62", 19, (19,), ""), ("4", 19, (4, 4, 4, 4, 3), " "),
    ("36", 14, (4, 6, 4), " "), ("5019", 16, (4, 4, 4, 4), " "), ("4", 13, (13,), ""),
]:
    CARDS.append(group(luhn_complete(prefix, length), sizes, sep))
CARD_T = [
    "Charge my card {v} for the order, thanks.", "card number: {v} exp 09/27 cvv 123",
    "Mi tarjeta es {v}, ¿puedes verificarla?", "Ich habe mit der Karte {v} bezahlt.",
    "Use {v} to test the payment form.", "Paiement refusé pour la carte {v}.",
]

SECRETS = [
    "sk-" + rand(ALNUM, 48), "sk-proj-" + rand(ALNUM + "_-", 64), "sk-ant-api03-" + rand(ALNUM + "_-", 60),
    "sk-demo1234567890abcdefghijklmnopqrstuv", "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
    "AKIAIOSFODNN7EXAMPLE", "ASIA" + rand(string.ascii_uppercase + string.digits, 16),
    "ghp_" + rand(ALNUM, 36), "github_pat_" + rand(ALNUM + "_", 82), "glpat-" + rand(ALNUM + "_-", 20),
    "xoxb-" + rand(string.digits, 12) + "-" + rand(string.digits, 12) + "-" + rand(ALNUM, 24),
    "AIza" + rand(ALNUM + "_-", 35), "sk_live_" + rand(ALNUM, 24), "pk_test_" + rand(ALNUM, 24),
    "hf_" + rand(ALNUM, 34),
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ." + rand(ALNUM + "_-", 43),
]
SECRET_T = [
    "My API key is {v}, why do I get a 401?", "export OPENAI_API_KEY={v}", "I accidentally committed {v} to GitHub.",
    "client = Client(api_key=\"{v}\")", "The token {v} stopped working yesterday.",
]
# secrets whose planted value is only the secret part of a longer construct
SECRET_SPECIAL = [
    ("Authorization: Bearer {v}", rand(ALNUM, 40)),
    ("curl -H 'Authorization: Bearer {v}' https://api.example.com/v1/me", rand(ALNUM + "._-", 32)),
    ("aws_secret_access_key = {v}", rand(ALNUM + "/+", 40)),
    ("AWS_SECRET_ACCESS_KEY=\"{v}\"", rand(ALNUM + "/+", 40)),
    ("DATABASE_URL=postgres://admin:{v}@db.internal:5432/app", rand(ALNUM, 14)),
    ("password = \"{v}\"", "Tr0ub4dor&3x"),
    ("my db_password: '{v}' is not accepted", rand(ALNUM, 12)),
    ("Here is my key, fix the error:\n{v}\nThanks", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + rand(ALNUM + "+/", 64)
     + "\n" + rand(ALNUM + "+/", 64) + "\n-----END RSA PRIVATE KEY-----"),
    ("{v}", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + rand(ALNUM + "+/", 48)
     + "\n-----END OPENSSH PRIVATE KEY-----"),
]

ADDRESSES = [
    ("My name is {n} and I live at {v}. Can you write me a cover letter?", "742 Evergreen Terrace, Springfield"),
    ("Ship it to {v}, please.", "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
    ("Our office moved to {v}.", "350 Fifth Avenue, Suite 3300, New York, NY 10118"),
    ("I live at {v} and the neighbours are loud.", "221B Baker Street, London NW1 6XE"),
    ("Deliver to {v}", "12 Oak Lane, Bristol BS1 4DJ"),
    ("The party is at {v} on Saturday.", "48 Maple Drive, Austin, TX 78701"),
    ("Send the letter to {v}.", "PO Box 1234, Portland, OR 97208"),
    ("My address is {v}, apartment on the second floor.", "77 Mass Ave, Cambridge, MA 02139"),
    ("We rent a flat at {v}.", "5 Queen's Road, Brighton"),
    ("Meine Adresse ist {v}.", "Hauptstraße 12, 10115 Berlin"),
    ("Wir wohnen in der {v}.", "Lindenallee 7a"),
    ("Bitte schicken Sie das Paket an {v}.", "Goethestr. 45, 80336 München"),
    ("J'habite au {v}.", "12 rue de la Paix, 75002 Paris"),
    ("Le bureau est situé {v}.", "45 avenue des Champs-Élysées"),
    ("Vivo en {v}.", "Calle Mayor 5, 28013 Madrid"),
    ("La tienda está en {v}.", "Avenida de la Constitución 20"),
    ("Abito in {v}.", "Via Roma 10, 00184 Roma"),
    ("Il negozio è in {v}.", "Piazza Navona 32"),
    ("Moro na {v}.", "Rua Augusta 1500, 01304-001 São Paulo"),
    ("Please update my billing address to {v}.", "3901 West Elm Street, Apt 4B, Chicago, IL 60614"),
]

NAMES = [
    # with a cue
    ("My name is {v} and I need help with my resume.", "John Smith"),
    ("Hi, I'm {v}, a nurse from Ohio.", "Sarah Johnson"),
    ("Dear Mrs. {v},\nThank you for your letter.", "Thompson"),
    ("Write an email to Mr. {v} about the delay.", "David Miller"),
    ("Please sign it as follows:\n\nBest regards,\n{v}", "Anna Kowalski"),
    ("Call me {v}, everyone does.", "Alex"),
    ("My wife {v} wants a surprise party.", "Maria"),
    ("Me llamo {v} y tengo treinta años.", "Lucía Fernández"),
    ("Je m'appelle {v}, j'ai besoin d'aide.", "Camille Durand"),
    ("Ich heiße {v} und wohne in Hamburg.", "Jürgen Müller"),
    ("Mi chiamo {v}.", "Giulia Bianchi"),
    ("Меня зовут {v}.", "Ирина Петрова"),
    ("Write a birthday poem for my daughter {v}.", "Emily"),
    ("Can you draft a reference letter for my student {v}?", "Priya Sharma"),
    ("Dr. {v} prescribed me antibiotics, is that normal?", "Ahmed Hassan"),
    ("My boss, {v}, keeps ignoring my emails.", "Kevin O'Brien"),
    ("This is {v} from the accounting team.", "Jennifer Lopez"),
    ("I had a meeting with {v} yesterday and it went badly.", "Michael Chen"),
    ("Please forward this to {v} in HR.", "Laura Martínez"),
    ("{v} and I are planning a trip to Japan.", "Thomas Becker"),
    ("Meu nome é {v}.", "João Pereira"),
    ("Sign the card from me, {v}.", "Olivia Brown"),
    # without a cue a rule can see
    ("Tell {v} that dinner is at eight.", "Tomasz"),
    ("Write a story where {v} saves the village.", "Kofi Mensah"),
    ("{v} said the report is due tomorrow.", "Sandeep"),
    ("Summarize what {v} told me in the meeting.", "Hyun-woo Park"),
    ("Can you check whether {v} replied?", "Siobhan"),
    ("Translate this note for {v}: the keys are under the mat.", "Nguyen Van An"),
]

NEGATIVES = [
    "Python 3.11.4 fixed the bug; upgrade from 3.10.12 first.",
    "Version 1.2.3.4 of the library dropped support for Windows.",
    "Bind the server to 0.0.0.0 and test with curl http://127.0.0.1:8000/health.",
    "Set api_key = 'YOUR_API_KEY' and replace it with your own.",
    "Use the placeholder sk-... in the docs, never a real key.",
    "The order #4155550132-A shipped on 2023-01-05 at 10:30.",
    "ISBN 978-3-16-148410-0 is the second edition.",
    "There are 10,080 minutes in a week and 525,600 in a year.",
    "The netmask 255.255.255.0 gives 254 usable addresses.",
    "git clone git@github.com:example/project.git",
    "Call the function with count=1234567 and seed=42.",
    "My password must be at least 12 characters, what is a good rule for choosing one?",
    "The meeting is on Monday at 3pm in room 101.",
    "Write a poem about Paris in the spring.",
    "I'm happy with the result, thanks!",
    "Compute 1234 5678 9012 3456 mod 97.",
    "token = get_token()\npassword = input('Password: ')",
    "The timestamp 1700000000 is in November 2023.",
    "Call me when you are ready.",
    "Dear all,\nthe build is green again.\n\nBest regards,\nThe CI team",
]


def main():
    rows = []
    for i, v in enumerate(EMAILS):
        rows.append({"text": EMAIL_T[i % len(EMAIL_T)].format(v=v), "pii": [["email", v]]})
    import phonenumbers

    for i, v in enumerate(PHONES):
        intl = v.startswith("+") or v.startswith("00")
        regions = [None] if intl else ["US", "GB", "DE", "FR"]
        ok = False
        for r in regions:
            try:
                ok = ok or phonenumbers.is_valid_number(phonenumbers.parse(v if not v.startswith("00") else "+" + v[2:], r))
            except phonenumbers.NumberParseException:
                pass
        assert ok, f"planted phone {v} is not valid in any region"
        rows.append({"text": PHONE_T[i % len(PHONE_T)].format(v=v), "pii": [["phone", v]]})
    for i, v in enumerate(IPS):
        rows.append({"text": IP_T[i % len(IP_T)].format(v=v), "pii": [["ip", v]]})
    for i, v in enumerate(CARDS):
        rows.append({"text": CARD_T[i % len(CARD_T)].format(v=v), "pii": [["credit_card", v]]})
    for i, v in enumerate(SECRETS):
        rows.append({"text": SECRET_T[i % len(SECRET_T)].format(v=v), "pii": [["secret", v]]})
    for t, v in SECRET_SPECIAL:
        rows.append({"text": t.format(v=v), "pii": [["secret", v]]})
    for t, v in ADDRESSES:
        pii = [["address", v]]
        if "{n}" in t:
            t = t.replace("{n}", "Homer Simpson")
            pii.append(["name", "Homer Simpson"])
        rows.append({"text": t.format(v=v), "pii": pii})
    for i, (t, v) in enumerate(NAMES):
        rows.append({"text": t.format(v=v), "pii": [["name", v]], "cue": i < 22})
    # multi-PII items: placeholders must stay consistent inside one conversation
    rows.append({"text": "I'm Rachel Green, email rachel.green@example.org, phone +1 212-555-0147. Rachel again: "
                         "please use rachel.green@example.org only.",
                 "pii": [["name", "Rachel Green"], ["email", "rachel.green@example.org"], ["phone", "+1 212-555-0147"]]})
    for t in NEGATIVES:
        rows.append({"text": t, "pii": []})
    out = Path(__file__).with_name("pii_eval.jsonl")
    with out.open("w") as fh:
        for i, r in enumerate(rows):
            fh.write(json.dumps({"id": f"pii-{i:03d}", **r}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} items to {out}")


if __name__ == "__main__":
    main()
