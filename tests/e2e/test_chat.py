"""`parley chat` driven with piped input: the real scenario answers, numbers press buttons,
commands move the clock, fake statuses and triggers, and edits reload while chatting."""

import os
import subprocess

import harness

SCRIPT = """
return {
  on_message = function(chat, msg)
    chat.session.last = msg.text
    chat:send("Выберите:", { buttons = { "Да", { id = "no", title = "Нет" } }, header = "Вопрос" })
  end,
  on_button = function(chat, press) chat:send("нажато " .. press.id) end,
  on_status = function(chat, st)
    if st.status == "failed" then chat:send("сбой " .. st.error.code) end
  end,
  on_trigger = function(chat, event) chat:send("событие " .. event.name .. " " .. event.data.order) end,
}
"""

CONFIG = """{
  "app_secret": "$NOT_SET_ANYWHERE", "verify_token": "$NOT_SET_ANYWHERE_EITHER",
  "provider": { "kind": "sandbox" },
  "channels": { "c": { "phone_number_id": "1", "script": "bot.lua" } }
}"""


def chat(binary, lines, setup=None):
    d = harness.scratch_dir("parley-chat-")
    for name, text in (("bot.lua", SCRIPT), ("parley.json", CONFIG)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    if setup:
        setup(d)
    p = subprocess.Popen([os.path.abspath(binary), "chat", "-c", os.path.join(d, "parley.json"), "--name", "Анна"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate("\n".join(lines) + "\n", timeout=60)
    return p.returncode, out, err, d


def test_chat_conversation(binary):
    rc, out, err, _ = chat(binary, [
        "привет", "2", "/session", "/trigger order_ready {\"order\":\"A-17\"}", "/fail 131026",
        "/wait 25h", "/trigger order_ready {\"order\":\"A-18\"}", "/bogus", "/quit"])
    assert rc == 0, (rc, out, err)
    assert "Выберите:" in out and "[1: Да] [2: Нет]" in out and "*Вопрос*" in out, out
    assert "нажато no" in out, out
    assert '"last": "привет"' in out, out
    assert "событие order_ready A-17" in out, out
    assert "сбой 131026" in out, out
    assert "window_closed" in out and "bot.lua:11: window_closed" in out, out
    assert "unknown command /bogus" in out, out
    assert "\033[" not in out, "no colour codes when piped"


def test_chat_reloads_an_edited_script(binary):
    """Edits take effect on the next line; a broken edit is reported and the old version answers."""
    import time

    d = harness.scratch_dir("parley-chat-")
    for name, text in (("bot.lua", SCRIPT), ("parley.json", CONFIG)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    p = subprocess.Popen([os.path.abspath(binary), "chat", "-c", os.path.join(d, "parley.json")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)

    def say(text, until):
        p.stdin.write(text + "\n")
        p.stdin.flush()
        seen = ""
        while until not in seen:
            line = p.stdout.readline()
            assert line, "chat ended early; so far:\n" + seen
            seen += line
        return seen

    say("один", "Выберите:")
    with open(os.path.join(d, "bot.lua"), "w") as f:
        f.write("return { on_message = function(chat, msg) chat:send( end }")
    time.sleep(0.2)
    out = say("два", "Выберите:")  # the previous version still answers
    assert "does not load" in out and "bot.lua:1:" in out, out
    with open(os.path.join(d, "bot.lua"), "w") as f:
        f.write(SCRIPT.replace("Выберите:", "Новая версия:"))
    time.sleep(0.2)
    out = say("три", "Новая версия:")
    assert "reloaded" in out, out
    p.communicate("/quit\n", timeout=30)
    assert p.returncode == 0


def test_chat_refuses_a_script_that_does_not_load(binary):
    def broken(d):
        with open(os.path.join(d, "bot.lua"), "w") as f:
            f.write("return {")
    rc, out, err, _ = chat(binary, ["hi"], setup=broken)
    assert rc == 1 and "does not load" in err and "bot.lua:1:" in err, (rc, out, err)
