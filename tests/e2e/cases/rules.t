# The send gate end to end: a scenario that tries each violation gets the right code in the log,
# with its own file:line and a detail naming the value and the limit, and sends nothing.
# One case per code chat:send (or chat:template) can raise with the cloud-api provider, plus the
# boundary cases that must pass. Details are written by runtime/rules.c (docs/rules.md).
# In the log, msg="…" escapes quotes, so a quoted value "x" appears as \"x\" (regex: \\"x\\").

=== four quick replies: too_many_quick_replies
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "a", "b", "c", "d" } })
end }
--- text
hi
--- sends_count
0
--- log
level=error channel=test contact=79991234567 event=on_message code=too_many_quick_replies msg=".*main\.lua:2: too_many_quick_replies: 4 quick replies; WhatsApp allows at most 3"\n

=== a 21-letter Cyrillic label: label_too_long
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Да", "Абвгдеёжзийклмнопрсту" } })
end }
--- text
hi
--- sends_count
0
--- log
code=label_too_long msg=".*main\.lua:2: label_too_long: button 2 \\"Абвгдеёжзийклмнопрсту\\" is 21 characters; WhatsApp allows 20"\n

=== a 20-letter Cyrillic label (40 bytes) passes and is sent
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Абвгдеёжзийклмнопрст" } })
end }
--- text
hi
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "button", "body": {"text": "Выберите"},
    "action": {"buttons": [
      {"type": "reply", "reply": {"id": "Абвгдеёжзийклмнопрст", "title": "Абвгдеёжзийклмнопрст"}}]}}}]
--- no_log
level=error

=== a blank label: label_empty
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Да", "   " } })
end }
--- text
hi
--- sends_count
0
--- log
code=label_empty msg=".*main\.lua:2: label_empty: button 2 label \\"   \\" is blank"\n

=== a button without a title: label_empty
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { { id = "yes" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=label_empty msg=".*main\.lua:2: label_empty: button 1 has no label"\n

=== two quick replies with the same title: duplicate_label
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Да", "Нет", "Да" } })
end }
--- text
hi
--- sends_count
0
--- log
code=duplicate_label msg=".*main\.lua:2: duplicate_label: buttons 1 and 3 have the same title \\"Да\\""\n

=== two quick replies with the same id: duplicate_label
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { { id = "x", title = "Да" }, { id = "x", title = "Нет" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=duplicate_label msg=".*main\.lua:2: duplicate_label: buttons 1 and 2 have the same id \\"x\\""\n

=== a quick reply with a URL button: mixed_buttons
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Да", { title = "Сайт", url = "https://example.com/" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=mixed_buttons msg=".*main\.lua:2: mixed_buttons: button 1 is a quick reply and button 2 a URL button; WhatsApp does not mix quick replies with URL or call buttons in one message"\n

=== a list with buttons: mixed_buttons
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { "Да" }, list = { button = "Меню", rows = { { id = "a", title = "A" } } } })
end }
--- text
hi
--- sends_count
0
--- log
code=mixed_buttons msg=".*main\.lua:2: mixed_buttons: a list cannot carry buttons; send the buttons in another message"\n

=== two URL buttons: too_many_url_buttons
--- script
return { on_message = function(chat, msg)
  chat:send("Ссылки", { buttons = { { title = "Сайт", url = "https://example.com/" },
                                    { title = "Блог", url = "https://example.com/blog" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=too_many_url_buttons msg=".*main\.lua:2: too_many_url_buttons: 2 URL buttons; WhatsApp allows at most 1"\n

=== two call buttons: too_many_call_buttons (the count is checked before the provider)
--- script
return { on_message = function(chat, msg)
  chat:send("Звоните", { buttons = { { title = "Офис", phone = "+7 812 438-16-78" },
                                     { title = "Склад", phone = "+7 812 438-16-79" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=too_many_call_buttons msg=".*main\.lua:2: too_many_call_buttons: 2 call buttons; WhatsApp allows at most 1"\n

=== an ftp URL button: bad_url
--- script
return { on_message = function(chat, msg)
  chat:send("Сайт", { buttons = { { title = "Сайт", url = "ftp://example.com/" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=bad_url msg=".*main\.lua:2: bad_url: button 1 url \\"ftp://example\.com/\\" is not an absolute http\(s\) URL"\n

=== a URL button without a host: bad_url
--- script
return { on_message = function(chat, msg)
  chat:send("Сайт", { buttons = { { title = "Сайт", url = "https:///path" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=bad_url msg=".*main\.lua:2: bad_url: button 1 url \\"https:///path\\" is not an absolute http\(s\) URL \(it has no host\)"\n

=== a call button with a trunk prefix instead of +7: bad_phone
--- script
return { on_message = function(chat, msg)
  chat:send("Звоните", { buttons = { { title = "Позвонить", phone = "8 (812) 438-16-78" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=bad_phone msg=".*main\.lua:2: bad_phone: button 1 phone \\"8 \(812\) 438-16-78\\" is not an international number \(\+, country code, 7-15 digits\)"\n

=== an id with a leading space: bad_id
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { { id = " yes", title = "Да" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=bad_id msg=".*main\.lua:2: bad_id: button 1 id \\" yes\\" has leading or trailing spaces; WhatsApp forbids them"\n

=== a 257-character id: bad_id (the value is quoted up to 40 characters)
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { buttons = { { id = ("i"):rep(257), title = "Да" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=bad_id msg=".*main\.lua:2: bad_id: button 1 id \\"i{40}…\\" is 257 characters; WhatsApp allows 256"\n

=== an empty text: text_empty
--- script
return { on_message = function(chat, msg)
  chat:send("")
end }
--- text
hi
--- sends_count
0
--- log
code=text_empty msg=".*main\.lua:2: text_empty: text is empty; WhatsApp does not send an empty message"\n

=== a blank body under buttons: text_empty
--- script
return { on_message = function(chat, msg)
  chat:send(" \n ", { buttons = { "Да" } })
end }
--- text
hi
--- sends_count
0
--- log
code=text_empty msg=".*main\.lua:2: text_empty: text is empty; a message with buttons needs a body text"\n

=== 4097 characters of plain text: text_too_long
--- script
return { on_message = function(chat, msg)
  chat:send(("я"):rep(4097))
end }
--- text
hi
--- sends_count
0
--- log
code=text_too_long msg=".*main\.lua:2: text_too_long: text is 4097 characters; WhatsApp allows 4096"\n

=== 1025 characters with buttons: text_too_long
--- script
return { on_message = function(chat, msg)
  chat:send(("я"):rep(1025), { buttons = { "Да" } })
end }
--- text
hi
--- sends_count
0
--- log
code=text_too_long msg=".*main\.lua:2: text_too_long: text is 1025 characters; WhatsApp allows 1024 in a message with buttons"\n

=== 4096 Cyrillic characters (8192 bytes) of plain text pass and are sent
--- script
return { on_message = function(chat, msg)
  chat:send(("я"):rep(4096))
  chat:send(("я"):rep(1024), { buttons = { "Да" } })
end }
--- text
hi
--- sends
[{"...": true, "type": "text"}, {"...": true, "type": "interactive"}]
--- no_log
level=error

=== a 61-character header: header_too_long
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { header = ("з"):rep(61), buttons = { "Да" } })
end }
--- text
hi
--- sends_count
0
--- log
code=header_too_long msg=".*main\.lua:2: header_too_long: header \\"з{40}…\\" is 61 characters; WhatsApp allows 60"\n

=== a 61-character footer: footer_too_long
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите", { footer = ("ф"):rep(61), buttons = { "Да" } })
end }
--- text
hi
--- sends_count
0
--- log
code=footer_too_long msg=".*main\.lua:2: footer_too_long: footer \\"ф{40}…\\" is 61 characters; WhatsApp allows 60"\n

=== a byte that is not UTF-8: bad_utf8
--- script
return { on_message = function(chat, msg)
  chat:send("abc\xff")
end }
--- text
hi
--- sends_count
0
--- log
code=bad_utf8 msg=".*main\.lua:2: bad_utf8: text is not valid UTF-8 \(byte 0xFF at offset 3\)"\n

=== a list of 11 rows: list_invalid
--- script
local rows = {}
for i = 1, 11 do rows[i] = { id = "r" .. i, title = "Вариант " .. i } end
return { on_message = function(chat, msg)
  chat:send("Выберите", { list = { button = "Варианты", rows = rows } })
end }
--- text
hi
--- sends_count
0
--- log
code=list_invalid msg=".*main\.lua:4: list_invalid: 11 rows; WhatsApp allows at most 10 in all sections"\n

=== an image without a link: media_invalid
--- script
return { on_message = function(chat, msg)
  chat:send(nil, { image = { caption = "Фото" } })
end }
--- text
hi
--- sends_count
0
--- log
code=media_invalid msg=".*main\.lua:2: media_invalid: the image has no link; give an absolute http\(s\) URL"\n

=== an image with an ftp link: media_invalid
--- script
return { on_message = function(chat, msg)
  chat:send("Фото", { image = "ftp://example.com/a.jpg" })
end }
--- text
hi
--- sends_count
0
--- log
code=media_invalid msg=".*main\.lua:2: media_invalid: image link \\"ftp://example\.com/a\.jpg\\" is not an absolute http\(s\) URL"\n

=== a call button on Cloud API: unsupported_by_provider, use a template
--- script
return { on_message = function(chat, msg)
  chat:send("Звоните", { buttons = { { title = "Позвонить", phone = "+7 (812) 438-16-78" } } })
end }
--- text
hi
--- sends_count
0
--- log
code=unsupported_by_provider msg=".*main\.lua:2: unsupported_by_provider: button 1: a call button cannot be sent in a Cloud API session message; use a template with a PHONE_NUMBER button"\n

=== a template without a registry: unknown_template
--- script
return { on_message = function(chat, msg)
  chat:template("order_update", { params = { "A-17" } })
end }
--- text
hi
--- sends_count
0
--- log
code=unknown_template msg=".*main\.lua:2: unknown_template: template \\"order_update\\" \(ru\): channel test has no templates registry \(set \\"templates\\" in its config\)"\n

=== a free-form send to a contact who never wrote: window_closed
--- script
return { on_status = function(chat, st)
  chat:send("Ваш заказ в пути")
end }
--- webhook
{"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
  "value": {"messaging_product": "whatsapp",
    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    "statuses": [{"id": "wamid.UNKNOWN", "status": "delivered", "recipient_id": "70000000000"}]}}]}]}
--- sends_count
0
--- log
level=error channel=test contact=70000000000 event=on_status code=window_closed msg=".*main\.lua:2: window_closed: the contact has never written, so there is no customer-service window; send a template"\n

=== a rejection leaves nothing behind: the earlier send of the same handler is dropped too
--- script
return { on_message = function(chat, msg)
  chat:send("Сейчас покажу варианты")
  chat:send("Выберите", { buttons = { "1", "2", "3", "4" } })
end }
--- text
hi
--- sends_count
0
--- log
code=too_many_quick_replies msg=".*main\.lua:3: too_many_quick_replies: 4 quick replies
