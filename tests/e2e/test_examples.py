"""The bundled examples work as their READMEs say: `examples/run-demo` (what `make run` does) shows
the demo's greeting, its URL button and the trigger's answer on the sandbox provider, and the
insurance questionnaire (examples/insurance) runs start to finish against the Cloud API stand-in
with the exact bodies Meta would receive. Each test returns None or raises."""

import os
import socket
import subprocess

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_PORT = 8080  # fixed by parley.json, which run-demo serves


def port_busy(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_run_demo_oneshot_shows_the_greeting_the_url_button_and_the_trigger_answer(binary):
    if port_busy(DEMO_PORT):
        print("SKIP test_run_demo_oneshot: port %d is busy (another parley or make run?); "
              "examples/run-demo needs it" % DEMO_PORT)
        return None
    env = {k: v for k, v in os.environ.items()
           if k not in ("WA_APP_SECRET", "WA_VERIFY_TOKEN", "PARLEY_TRIGGER_TOKEN", "PARLEY_STDLIB")}
    env["DEMO_ONESHOT"] = "1"
    p = subprocess.run([os.path.join(ROOT, "examples", "run-demo"), os.path.abspath(binary)], cwd=ROOT,
                       env=env, capture_output=True, timeout=60)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, "run-demo exited %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, out, err)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in err, "sanitizer report:\n" + err
    want = [
        "ok: parley.json: 1 channel\n",
        "[sandbox] demo -> 79991234567 (interactive)\n"
        "  Здравствуйте, Анна! Чем помочь?\n"
        "  _Parley demo_\n"
        "  [1: Тарифы] [2: Оператор] [3: Сайт]\n",
        "[sandbox] demo -> 79991234567 (interactive)\n"
        "  Всё о тарифах — на сайте.\n"
        "  [Перейти на сайт -> https://example.com/tariffs]\n",
        "[sandbox] demo -> 79991234567 (text)\n"
        "  Заказ A-17 готов!\n",
    ]
    at = 0
    for block in want:
        i = out.find(block, at)
        assert i >= 0, "run-demo's output lacks (in this order):\n%s\nstdout:\n%s\nstderr:\n%s" % (block, out, err)
        at = i + len(block)
    assert out.count("POST http://127.0.0.1:8080/webhook -> 200") == 2, out
    assert '"messages":["' in out, out  # the trigger's 200 answer with one local message id
    assert "level=error" not in err, err


INSURANCE = os.path.join(ROOT, "examples", "insurance", "scripts", "insurance.lua")


def text(body):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
            "type": "text", "text": {"body": body}}


def question(body, buttons, n):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": body}, "footer": {"text": "Вопрос %d из 3" % n},
                            "action": {"buttons": [{"type": "reply", "reply": {"id": b, "title": b}} for b in buttons]}}}


Q1 = question("Автомобиль будет использоваться в личных целях?", ["Да", "Нет"], 1)
Q2 = question("Сколько водителей будет вписано в полис?", ["Один", "Двое", "Больше двух"], 2)
Q3 = question("Стаж самого молодого водителя больше 3 лет?", ["Да", "Нет"], 3)


def test_insurance_questionnaire_start_to_finish(binary):
    with open(INSURANCE, encoding="utf-8") as f:
        script = f.read()
    provider = harness.FakeProvider()
    p = harness.Parley(binary, {"insurance.lua": script}, provider=provider)
    events = [0]

    def step(payload, want):
        before = len(provider.sends())
        assert p.post_webhook(payload) == 200
        events[0] += 1
        p.wait_idle(events[0])
        got = provider.sends()[before:]
        assert got == want, "after %s\nwant %s\n got %s" % (
            payload["entry"][0]["changes"][0]["value"]["messages"][0], want, got)

    try:
        p.start()
        step(harness.press_webhook("Да"), [text("Напишите что-нибудь, чтобы начать расчёт.")])
        step(harness.text_webhook("Хочу ОСАГО"),
             [text("Здравствуйте, Анна! Рассчитаем ОСАГО за три вопроса."), Q1])
        step(harness.press_webhook("Да"), [Q2])
        step(harness.text_webhook("двое"), [text("Пожалуйста, ответьте кнопкой ниже."), Q2])
        step(harness.press_webhook("Двое"), [Q3])
        step(harness.press_webhook("Нет"), [
            text("Спасибо! Личные цели: Да, водителей: Двое, стаж больше 3 лет: Нет. Расчёт стоимости — на сайте."),
            {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
             "type": "interactive",
             "interactive": {"type": "cta_url", "body": {"text": "Свяжитесь с нами."},
                             "action": {"name": "cta_url", "parameters": {
                                 "display_text": "Перейти на сайт", "url": "https://example.com/osago"}}}},
        ])
        # the questionnaire is over: a new message starts it again
        step(harness.text_webhook("Ещё раз"), [text("Здравствуйте, Анна! Рассчитаем ОСАГО за три вопроса."), Q1])
        assert "level=error" not in p.log(), p.log()
        assert p.stop() == 0
    finally:
        harness.shutdown(p, provider)
