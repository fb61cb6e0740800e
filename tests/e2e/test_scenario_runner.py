"""`parley test` itself: it reports each test, fails with the test file's line, and exits 1 when
anything failed (a runner that cannot fail would make every scenario test worthless)."""

import os
import subprocess

import harness

SCRIPT = """
return {
  on_message = function(chat, msg)
    if msg.text == "bad" then chat:send("x", { buttons = { "1", "2", "3", "4" } }) end
    assert(os.time() > 0)
    chat:send("echo " .. msg.text, { buttons = { "Да", "Нет" } })
  end,
  on_button = function(chat, press) chat:send("pressed " .. press.id .. " " .. press.kind) end,
}
"""

CONFIG = """{
  "app_secret": "$UNSET_IN_TESTS_SECRET", "verify_token": "$UNSET_IN_TESTS_TOKEN",
  "provider": { "kind": "cloud-api", "url": "http://127.0.0.1:9", "token": "$UNSET_WA_TOKEN" },
  "channels": { "c": { "phone_number_id": "1", "script": "bot.lua" } }
}"""

TESTS = """
use("parley.json")
test("passes", function()
  send("hi")
  expect{ text = "echo hi", buttons = { "Да", "Нет" } }
  press("Нет")
  expect("pressed Нет reply")
end)
test("fails on a wrong expectation", function()
  send("hi")
  expect{ text = "something else" }
end)
test("fails when the scenario breaks a rule", function()
  send("bad")
end)
test("expect_error catches the rule's code", function()
  expect_error("too_many_quick_replies", function() send("bad") end)
end)
test("fails when the bot says nothing more", function()
  expect("anything")
end)
"""


def run_tests(binary, tests):
    d = harness.scratch_dir("parley-runner-")
    for name, text in (("bot.lua", SCRIPT), ("parley.json", CONFIG), ("x_test.lua", tests)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNSET_")}
    r = subprocess.run([os.path.abspath(binary), "test", os.path.join(d, "x_test.lua")], capture_output=True,
                       text=True, env=env, timeout=60)
    return r, d


def test_runner_reports_passes_and_failures(binary):
    r, d = run_tests(binary, TESTS)
    out = r.stdout
    assert r.returncode == 1, (r.returncode, out, r.stderr)
    assert "ok   passes" in out, out
    assert "FAIL fails on a wrong expectation at %s/x_test.lua:11" % d in out, out
    assert 'expected text = "something else", got "echo hi"' in out, out
    assert "FAIL fails when the scenario breaks a rule" in out, out
    assert "bot.lua:4: too_many_quick_replies: 4 quick replies" in out, out
    assert "ok   expect_error catches the rule's code" in out, out
    assert "but the bot sent nothing more" in out, out
    assert out.strip().endswith("scenarios: 2 passed, 3 failed"), out


def test_runner_exits_0_when_all_pass_and_needs_no_secrets(binary):
    r, _ = run_tests(binary, 'use("parley.json")\ntest("one", function() send("a"); expect("echo a") end)\n')
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.strip().endswith("scenarios: 1 passed, 0 failed"), r.stdout


def test_runner_without_tests_fails(binary):
    r, _ = run_tests(binary, 'use("parley.json")\n')
    assert r.returncode == 1 and "no test(" in r.stdout, r.stdout


def test_each_test_starts_as_the_default_contact_at_the_chosen_time(binary):
    tests = '''
use("parley.json", { now = 1800000000, contact = "70000000001" })
test("moves away", function()
  contact("70000000002")
  assert(now() >= 1800000000 and now() < 1800000060, "the clock starts at use's now")
end)
test("starts again as the default contact, at the chosen time", function()
  send("who")
  expect{ text = "echo who", to = "70000000001" }
end)
'''
    r, _ = run_tests(binary, tests)
    assert r.returncode == 0, (r.stdout, r.stderr)
