"""Templates, the 24-hour window and business-initiated messages, end to end: a CRM trigger sends
an approved template as exact Cloud API JSON; each template error refuses before anything leaves;
consent and the daily limit hold; status and tier webhooks change what may be sent, durably."""

import json
import os
import time

import harness

REGISTRY = {"data": harness.TEMPLATES + [
    {"name": "pending_one", "language": "ru", "status": "PENDING", "category": "UTILITY",
     "components": [{"type": "BODY", "text": "Скоро"}]},
]}

SCRIPT = """
return {
  on_message = function(chat, msg)
    if msg.text == "stop" then return end
    chat:opt_in("asked in chat")
  end,
  on_trigger = function(chat, event)
    local d = event.data
    if event.name == "shipped" then
      return chat:template("order_shipped", { params = { d.name, d.order }, header = d.order,
                                              buttons = { [1] = d.order } })
    elseif event.name == "promo" then
      return chat:template("promo", { params = { first_name = d.name } })
    elseif event.name == "raw" then
      return chat:template(d.template, d.opts)
    elseif event.name == "optin" then
      chat:opt_in("crm")
    elseif event.name == "badbutton" then
      return chat:template("order_shipped", { params = { "Анна", "A" }, header = "A", buttons = { [5] = "x" } })
    end
  end,
}
"""


def run(binary, fn, daily_limit=250):
    def write_registry(p):
        with open(os.path.join(p.dir, "templates.json"), "w") as f:
            json.dump(REGISTRY, f, ensure_ascii=False)

    harness.with_parley(binary, {"main.lua": SCRIPT}, fn, setup=write_registry, channels={
        "shop": {"phone_number_id": harness.PHONE_NUMBER_ID, "script": "scripts/main.lua",
                 "templates": "templates.json", "language": "ru", "daily_limit": daily_limit,
                 "waba_id": "102290129340398"}})


def template_status(name, lang, event, ts=None):
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": ts or int(time.time()),
            "changes": [{"field": "message_template_status_update", "value": {
                "event": event, "message_template_id": 12345, "message_template_name": name,
                "message_template_language": lang, "reason": "NONE"}}]}]}


def tier(limit, event="UPGRADE"):
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": int(time.time()),
            "changes": [{"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550783881", "event": event, "current_limit": limit}}]}]}


def test_trigger_sends_the_exact_template_json(binary):
    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        status, body = p.trigger("shop", {"to": "79991234567", "event": "shipped",
                                          "data": {"name": "Анна", "order": "A-17"}, "id": "crm-7"})
        assert status == 200 and len(body["messages"]) == 1, body
        sent = provider.wait_sends(1)
        assert sent == [{
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
            "type": "template",
            "template": {"name": "order_shipped", "language": {"code": "ru"}, "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "A-17"}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Анна"}, {"type": "text", "text": "A-17"}]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-17"}]}]}}], \
            json.dumps(sent, ensure_ascii=False)
        # analytics: the template's delivery status, from the state file, moves with statuses
        p.wait_idle(1)
        metrics = p.get("/metrics")[1].decode()
        assert 'parley_template_messages{channel="shop",template="order_shipped",status="sent"} 1' in metrics, metrics
        assert p.post_webhook(harness.status_webhook("wamid.FAKE000001", "read")) == 200
        p.wait_idle(2)
        metrics = p.get("/metrics")[1].decode()
        assert 'template="order_shipped",status="read"} 1' in metrics, metrics
        assert 'template="order_shipped",status="sent"}' not in metrics, metrics
    run(binary, go)


def test_every_template_error_refuses_before_sending(binary):
    cases = [
        ({"template": "nope"}, "unknown_template", 'template "nope"'),
        ({"template": "order_shipped", "opts": {"lang": "en"}}, "unknown_template", "ru"),
        ({"template": "pending_one"}, "template_not_approved", "PENDING"),
        ({"template": "order_shipped", "opts": {"params": ["Анна"], "header": "A"}}, "template_params", "2"),
        ({"template": "order_shipped", "opts": {"params": ["Анна", "A\tB"], "header": "A"}}, "template_param_format", "tab"),
        ({"template": "order_shipped", "opts": {"params": ["Анна", "A     B"], "header": "A"}}, "template_param_format", "spaces"),
        ({"template": "promo", "opts": {"params": ["Анна"]}}, "template_params", ""),
    ]

    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        for data, code, fragment in cases:
            status, body = p.trigger("shop", {"to": "79991234567", "event": "raw", "data": data})
            assert status == 422, (data, status, body)
            assert body["error"]["code"] == code, (data, body)
            assert "main.lua:15: " + code + ": " in body["error"]["message"], body
            assert fragment in body["error"]["message"], (fragment, body)
        status, body = p.trigger("shop", {"to": "79991234567", "event": "badbutton"})
        assert status == 422 and body["error"]["code"] == "unregistered_buttons", body
        assert "main.lua:19: unregistered_buttons: " in body["error"]["message"], body
        time.sleep(0.1)
        assert provider.sends() == [], provider.sends()
    run(binary, go)


def test_window_consent_and_daily_limit(binary):
    def go(p, provider):
        # never wrote, no opt-in: a template is business-initiated and refused
        status, body = p.trigger("shop", {"to": "70000000001", "event": "promo", "data": {"name": "Ира"}})
        assert status == 422 and body["error"]["code"] == "not_opted_in", body
        # free-form to someone who never wrote: window_closed
        # (the scenario's promo is a template; record consent, then it goes)
        assert p.trigger("shop", {"to": "70000000001", "event": "optin"})[0] == 200
        assert p.trigger("shop", {"to": "70000000001", "event": "promo", "data": {"name": "Ира"}})[0] == 200
        # the limit is 2: a second contact fits, a third does not; the same contact again is free
        assert p.trigger("shop", {"to": "70000000002", "event": "optin"})[0] == 200
        assert p.trigger("shop", {"to": "70000000002", "event": "promo", "data": {"name": "Оля"}})[0] == 200
        assert p.trigger("shop", {"to": "70000000003", "event": "optin"})[0] == 200
        status, body = p.trigger("shop", {"to": "70000000003", "event": "promo", "data": {"name": "Яна"}})
        assert status == 422 and body["error"]["code"] == "daily_limit", body
        assert "2 unique contacts" in body["error"]["message"] and "limit is 2" in body["error"]["message"], body
        assert p.trigger("shop", {"to": "70000000001", "event": "promo", "data": {"name": "Ира"}})[0] == 200
        # inside the window a template is customer-initiated and not counted
        assert p.post_webhook(harness.text_webhook("hi", wa_id="70000000004")) == 200
        p.wait_idle(1)
        assert p.trigger("shop", {"to": "70000000004", "event": "promo", "data": {"name": "Ева"}})[0] == 200
        assert p.health()["channels"]["shop"]["daily_limit"] == 2
        # a tier webhook raises the limit: the third contact now fits
        assert p.post_webhook(tier("TIER_2K")) == 200
        p.wait_log("daily limit of business-initiated recipients is now 2000")
        assert p.trigger("shop", {"to": "70000000003", "event": "promo", "data": {"name": "Яна"}})[0] == 200
        assert len(provider.wait_sends(5)) == 5
        # all of it survives a restart: consent, counted recipients and the tier
        assert p.stop() == 0
        p.start()
        assert p.health()["channels"]["shop"]["daily_limit"] == 2000
        assert p.post_webhook(tier("TIER_250", "DOWNGRADE")) == 200
        p.wait_log("is now 250")
    run(binary, go, daily_limit=2)


def test_status_webhooks_pause_and_reinstate_a_template(binary):
    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        args = {"to": "79991234567", "event": "promo", "data": {"name": "Анна"}}
        assert p.trigger("shop", args)[0] == 200
        assert p.post_webhook(template_status("promo", "ru", "PAUSED")) == 200
        p.wait_log("template_status")
        status, body = p.trigger("shop", args)
        assert status == 422 and body["error"]["code"] == "template_not_approved" and "PAUSED" in body["error"]["message"], body
        # it stays paused across a restart
        assert p.stop() == 0
        p.start()
        assert p.trigger("shop", args)[0] == 422
        assert p.post_webhook(template_status("promo", "ru", "REINSTATED")) == 200
        deadline = time.time() + 5
        while p.trigger("shop", args)[0] != 200 and time.time() < deadline:
            time.sleep(0.05)
        assert p.trigger("shop", args)[0] == 200
    run(binary, go)


def test_an_edited_registry_is_reloaded(binary):
    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        args = {"to": "79991234567", "event": "raw", "data": {"template": "fresh"}}
        assert p.trigger("shop", args)[1]["error"]["code"] == "unknown_template"
        reg = json.loads(json.dumps(REGISTRY))
        reg["data"].append({"name": "fresh", "language": "ru", "status": "APPROVED", "category": "UTILITY",
                            "components": [{"type": "BODY", "text": "Новый шаблон"}]})
        with open(os.path.join(p.dir, "templates.json"), "w") as f:
            json.dump(reg, f, ensure_ascii=False)
        deadline = time.time() + 5
        while p.health()["channels"]["shop"].get("templates") != 4 and time.time() < deadline:
            time.sleep(0.02)
        assert p.trigger("shop", args)[0] == 200
    run(binary, go)


def test_check_reports_templates_that_break_the_rules(binary):
    import subprocess
    bad = {"data": REGISTRY["data"] + [
        {"name": "starts_with_var", "language": "ru", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "{{1}} привет"}]},
        {"name": "qr_split", "language": "ru", "status": "APPROVED", "category": "MARKETING",
         "components": [{"type": "BODY", "text": "Выберите"},
                        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "A"},
                                                        {"type": "URL", "text": "Site", "url": "https://x.io"},
                                                        {"type": "QUICK_REPLY", "text": "B"}]}]}]}
    provider = harness.FakeProvider()
    p = harness.Parley(binary, {"main.lua": SCRIPT}, provider=provider, channels={
        "shop": {"phone_number_id": "1", "script": "scripts/main.lua", "templates": "templates.json"}})
    try:
        with open(os.path.join(p.dir, "templates.json"), "w") as f:
            json.dump(bad, f, ensure_ascii=False)
        r = subprocess.run([p.binary, "check", "-c", p.config], capture_output=True, text=True, env=p.env)
        assert r.returncode == 1, (r.stdout, r.stderr)
        lines = r.stdout.strip().splitlines()
        assert any("templates.json: data[3] (starts_with_var, ru): template_invalid: " in l for l in lines), lines
        assert any("templates.json: data[4] (qr_split, ru): template_invalid: " in l for l in lines), lines
        with open(os.path.join(p.dir, "templates.json"), "w") as f:
            f.write('{"data": [ }')
        r = subprocess.run([p.binary, "check", "-c", p.config], capture_output=True, text=True, env=p.env)
        assert r.returncode == 1 and "templates.json: templates: " in r.stdout and ":1:" in r.stdout, r.stdout
    finally:
        p.cleanup()
        provider.close()


def test_the_servers_daily_limit_counts_a_broadcasts_recipients(binary):
    """A broadcast runs as its own process on the same state file: the server's limit must see
    the recipients it messaged, and a broadcast's opt-in must survive the server's writes."""
    import subprocess

    def go(p, provider):
        with open(os.path.join(p.dir, "list.csv"), "w") as f:
            f.write("wa_id,first_name,opt_in\n70000000011,Ира,1\n70000000012,Оля,1\n")
        r = subprocess.run([p.binary, "broadcast", "-c", p.config, "--channel", "shop", "--template", "promo",
                            "--to", os.path.join(p.dir, "list.csv"), "--rate", "50"],
                           capture_output=True, text=True, env=p.env, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        # the broadcast used the whole limit of 2: a third recipient is refused by the server
        assert p.trigger("shop", {"to": "70000000013", "event": "optin"})[0] == 200
        status, body = p.trigger("shop", {"to": "70000000013", "event": "promo", "data": {"name": "Яна"}})
        assert status == 422 and body["error"]["code"] == "daily_limit", body
        # the broadcast's recipients may still be messaged again: they are counted already, and
        # their opt-in (recorded by the broadcast) holds even after the server wrote the contact
        assert p.post_webhook(harness.text_webhook("stop", wa_id="70000000011")) == 200
        p.wait_idle(1)
        status, body = p.trigger("shop", {"to": "70000000012", "event": "promo", "data": {"name": "Оля"}})
        assert status == 200, body
    run(binary, go, daily_limit=2)


def test_a_broadcasts_opt_in_reaches_a_contact_the_server_already_knew(binary):
    """The server remembers contacts between turns. A broadcast is another process: when it
    records an opt-in, the server's next turn must see it, not the contact it remembered."""
    import subprocess

    def go(p, provider):
        args = {"to": "70000000021", "event": "promo", "data": {"name": "Ира"}}
        status, body = p.trigger("shop", args)
        assert status == 422 and body["error"]["code"] == "not_opted_in", body
        with open(os.path.join(p.dir, "list.csv"), "w") as f:
            f.write("wa_id,first_name,opt_in\n70000000021,Ира,1\n")
        r = subprocess.run([p.binary, "broadcast", "-c", p.config, "--channel", "shop", "--template", "promo",
                            "--to", os.path.join(p.dir, "list.csv"), "--rate", "50"],
                           capture_output=True, text=True, env=p.env, timeout=60)
        assert r.returncode == 0 and "sent: 1\n" in r.stdout, (r.stdout, r.stderr)
        status, body = p.trigger("shop", args)
        assert status == 200, body
    run(binary, go)
