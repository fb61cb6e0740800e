# Sends: what the scenario asks for leaves as the exact Cloud API JSON.
# Sections: script (the channel's Lua), text / press (one inbound per line) or webhook (raw JSON),
# status (the webhook's expected HTTP status), sends (the exact bodies the provider must receive,
# in order), sends_count, log / no_log (regexes over the log), provider_responses.

=== a text message is answered with plain text
--- script
return { on_message = function(chat, msg) chat:send("Вы написали: " .. msg.text) end }
--- text
Привет
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "text", "text": {"body": "Вы написали: Привет"}}]
--- no_log
level=error

=== quick replies become interactive.button with ids defaulting to titles
--- script
return { on_message = function(chat, msg)
  chat:send("Автомобиль будет использоваться в личных целях?",
    { buttons = { "Да", { id = "no", title = "Нет" } }, header = "Анкета", footer = "Страхование" })
end }
--- text
хочу полис
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "button",
    "header": {"type": "text", "text": "Анкета"},
    "body": {"text": "Автомобиль будет использоваться в личных целях?"},
    "footer": {"text": "Страхование"},
    "action": {"buttons": [
      {"type": "reply", "reply": {"id": "Да", "title": "Да"}},
      {"type": "reply", "reply": {"id": "no", "title": "Нет"}}]}}}]

=== one URL button becomes interactive.cta_url
--- script
return { on_message = function(chat, msg)
  chat:send("Свяжитесь с нами.", { buttons = { { title = "Перейти на сайт", url = "https://example.com/" } } })
end }
--- text
контакты
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "cta_url", "body": {"text": "Свяжитесь с нами."},
    "action": {"name": "cta_url", "parameters": {"display_text": "Перейти на сайт", "url": "https://example.com/"}}}}]

=== a button press reaches on_button with id, title and kind
--- script
return { on_button = function(chat, press)
  chat:send(("%s|%s|%s"):format(press.id, press.title, press.kind))
end }
--- press
yes Да
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "text", "text": {"body": "yes|Да|reply"}}]

=== several sends in one handler leave in order
--- script
return { on_message = function(chat, msg)
  for i = 1, 5 do chat:send("part " .. i) end
end }
--- text
go
--- sends
[{"...": true, "text": {"body": "part 1"}}, {"...": true, "text": {"body": "part 2"}},
 {"...": true, "text": {"body": "part 3"}}, {"...": true, "text": {"body": "part 4"}},
 {"...": true, "text": {"body": "part 5"}}]

=== a handler that raises after sending sends nothing
--- script
return { on_message = function(chat, msg)
  chat:send("this must not leave")
  error("boom")
end }
--- text
hi
--- sends_count
0
--- log
level=error channel=test contact=79991234567 event=on_message code=script_error msg=".*main.lua:3: boom"

=== four quick replies are refused with the script line, nothing sent
--- script
return { on_message = function(chat, msg)
  chat:send("choose", { buttons = { "a", "b", "c", "d" } })
end }
--- text
hi
--- sends_count
0
--- log
code=too_many_quick_replies msg=".*main.lua:2: too_many_quick_replies: 4 quick replies

=== the session persists between messages of one contact
--- script
return { on_message = function(chat, msg)
  chat.session.n = (chat.session.n or 0) + 1
  chat:send("message " .. chat.session.n)
end }
--- text
one
two
three
--- sends
[{"...": true, "text": {"body": "message 1"}}, {"...": true, "text": {"body": "message 2"}},
 {"...": true, "text": {"body": "message 3"}}]

=== a pcall-caught rejection can be inspected and the handler goes on
--- script
return { on_message = function(chat, msg)
  local ok, err = pcall(chat.send, chat, "x", { buttons = { "Перейти на сайт компании" } })
  local code = err:match(":%d+: ([%w_]+):")
  chat:send(("caught %s"):format(code))
end }
--- text
hi
--- sends
[{"...": true, "text": {"body": "caught label_too_long"}}]
