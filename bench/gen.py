#!/usr/bin/env python3
"""gen.py - the benchmark's webhooks: N distinct, signed Cloud API text-message notifications.

    bench/gen.py OUT N [--contacts K] [--seed S] [--field F]

Writes OUT with one request per line, "<X-Hub-Signature-256 value>\\t<raw body>\\n", which
bench/webhook.lua loads into wrk. The app secret comes from the environment (BENCH_APP_SECRET).

Each body is what Meta posts: the whatsapp_business_account envelope with one change holding one
text message, compact JSON with non-ASCII characters escaped as \\uXXXX (lowercase hex), the form
Meta signs. Every message has its own wamid (built like Meta's: base64 of the sender and a
20-hex-digit id), K distinct senders (default 3000) with Russian names, and Cyrillic texts. The
timestamps are a few seconds before now, so the 24-hour customer-service window is open for the
replies (regenerate a file older than a day).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import time

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"

MALE = ["Иван", "Сергей", "Дмитрий", "Алексей", "Михаил", "Андрей", "Павел", "Николай",
        "Владимир", "Артём", "Григорий", "Фёдор"]
FEMALE = ["Анна", "Ольга", "Мария", "Елена", "Наталья", "Татьяна", "Юлия", "Екатерина",
          "Светлана", "Ирина", "Ксения", "Дарья"]
SURNAMES = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Новиков",
            "Морозов", "Волков", "Зайцев", "Павлов", "Семёнов", "Голубев", "Виноградов", "Богданов"]
TEXTS = [
    "Здравствуйте!",
    "Привет",
    "Добрый день, сколько стоит ОСАГО на легковой автомобиль?",
    "Хочу узнать статус заказа №{n}",
    "Можно перенести доставку на завтра после 18:00?",
    "Спасибо, всё получил 👍",
    "А есть скидка для постоянных клиентов?",
    "Подскажите, пожалуйста, часы работы офиса на Невском",
    "Не приходит код подтверждения, номер {phone}",
    "Да",
    "Нет, спасибо",
    "Оператор",
    "Как оплатить картой Мир?",
    "Машина будет использоваться в личных целях, стаж вождения {k} лет",
    "Заказ {n} пришёл повреждённым, что делать?",
    "Сколько ждать ответа? Пишу уже {k}-й раз",
    "Тарифы",
    "Можно счёт на юрлицо? ИНН 78{n}",
    "Добрый вечер! Интересует полис КАСКО для Kia Rio 2021 года",
    "Ок",
]


def wamid(wa_id, seq, salt):
    """A wamid shaped like Meta's: "wamid." + base64(0x1c 0x18 len sender 0x15 0x02 0x00 0x12 0x18
    0x14 <20 upper-case hex digits> 0x00). Distinct for distinct (salt, seq)."""
    sender = wa_id.encode()
    ident = ("%06X%014X" % (salt & 0xFFFFFF, seq)).encode()
    raw = b"\x1c\x18" + bytes([len(sender)]) + sender + b"\x15\x02\x00\x12\x18\x14" + ident + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def body_for(seq, contact, rng, salt, ts, field="messages"):
    wa_id, name = contact
    text = rng.choice(TEXTS).format(n=rng.randint(100000, 999999), k=rng.randint(2, 30), phone="+" + wa_id)
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{
            "from": wa_id,
            "id": wamid(wa_id, seq, salt),
            "timestamp": str(ts),
            "text": {"body": text},
            "type": "text",
        }],
    }
    note = {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field}]}]}
    # Meta's form: compact, non-ASCII as \uXXXX with lowercase hex (json's ensure_ascii does that)
    return json.dumps(note, ensure_ascii=True, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--contacts", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--field", default="messages",
                    help="the change's field; another than messages (bench/run --layers uses security, "
                         "which Parley does not subscribe to) makes Parley answer without storing anything")
    a = ap.parse_args()
    secret = os.environ.get("BENCH_APP_SECRET")
    if not secret:
        sys.exit("gen.py: BENCH_APP_SECRET is not set")
    if a.n < 1 or a.contacts < 1:
        sys.exit("gen.py: N and --contacts must be positive")

    rng = random.Random(a.seed)
    salt = rng.getrandbits(24)
    contacts = []
    seen = set()
    while len(contacts) < a.contacts:
        wa_id = "7%03d%07d" % (rng.choice([900, 903, 911, 916, 921, 926, 931, 950, 981, 999]), rng.randrange(10**7))
        if wa_id in seen:
            continue
        seen.add(wa_id)
        if rng.random() < 0.5:
            name = "%s %s" % (rng.choice(MALE), rng.choice(SURNAMES))
        else:
            name = "%s %sа" % (rng.choice(FEMALE), rng.choice(SURNAMES))
        contacts.append((wa_id, name if rng.random() < 0.9 else name.split()[0]))

    key = secret.encode()
    ts = int(time.time()) - 5
    tmp = a.out + ".tmp"
    with open(tmp, "wb", buffering=1 << 20) as f:
        for seq in range(a.n):
            body = body_for(seq, contacts[rng.randrange(len(contacts))], rng, salt, ts, a.field)
            sig = hmac.new(key, body, hashlib.sha256).hexdigest()
            f.write(b"sha256=" + sig.encode() + b"\t" + body + b"\n")
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
