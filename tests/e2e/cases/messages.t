# Message shapes: what each chat:send option becomes on the wire, as the exact Cloud API JSON
# (reference/cloud-api.md §2.2: text with preview_url, interactive list, button with a media
# header, image, document; §7: a business-scoped user id goes in "recipient" instead of "to").

=== a list with sections, header and footer becomes interactive.list
--- script
return { on_message = function(chat, msg)
  chat:send("Какой способ доставки удобнее?", {
    header = "Доставка", footer = "Цены с НДС",
    list = { button = "Способы", sections = {
      { title = "Быстро", rows = {
        { id = "express", title = "Экспресс", description = "Завтра, 990 ₽" },
        { id = "courier", title = "Курьер", description = "1–3 дня" } } },
      { title = "Дёшево", rows = {
        { id = "post", title = "Почта" } } } } } })
end }
--- text
доставка
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "list",
    "header": {"type": "text", "text": "Доставка"},
    "body": {"text": "Какой способ доставки удобнее?"},
    "footer": {"text": "Цены с НДС"},
    "action": {"button": "Способы", "sections": [
      {"title": "Быстро", "rows": [
        {"id": "express", "title": "Экспресс", "description": "Завтра, 990 ₽"},
        {"id": "courier", "title": "Курьер", "description": "1–3 дня"}]},
      {"title": "Дёшево", "rows": [
        {"id": "post", "title": "Почта"}]}]}}}]
--- no_log
level=error

=== a one-section list given as opts.list.rows; a row id defaults to its title
--- script
return { on_message = function(chat, msg)
  chat:send("Выберите тариф", { list = { button = "Тарифы", rows = {
    { id = "basic", title = "Базовый", description = "990 ₽ в месяц" },
    { title = "Бизнес" } } } })
end }
--- text
тарифы
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "list",
    "body": {"text": "Выберите тариф"},
    "action": {"button": "Тарифы", "sections": [
      {"rows": [
        {"id": "basic", "title": "Базовый", "description": "990 ₽ в месяц"},
        {"id": "Бизнес", "title": "Бизнес"}]}]}}}]
--- no_log
level=error

=== an image with a caption becomes type image
--- script
return { on_message = function(chat, msg)
  chat:send(nil, { image = { link = "https://example.com/policy.jpg", caption = "Ваш полис" } })
  chat:send("Тот же полис", { image = "https://example.com/policy.jpg" })
end }
--- text
полис
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "image", "image": {"link": "https://example.com/policy.jpg", "caption": "Ваш полис"}},
 {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "image", "image": {"link": "https://example.com/policy.jpg", "caption": "Тот же полис"}}]
--- no_log
level=error

=== a document with a filename becomes type document
--- script
return { on_message = function(chat, msg)
  chat:send(nil, { document = { link = "https://example.com/d/123.pdf", filename = "Договор.pdf" } })
  chat:send("Договор во вложении", { document = { link = "https://example.com/d/123.pdf", filename = "Договор.pdf" } })
end }
--- text
договор
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "document", "document": {"link": "https://example.com/d/123.pdf", "filename": "Договор.pdf"}},
 {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "document", "document": {"link": "https://example.com/d/123.pdf", "caption": "Договор во вложении",
                                    "filename": "Договор.pdf"}}]
--- no_log
level=error

=== an image with quick replies becomes interactive.button with an image header
--- script
return { on_message = function(chat, msg)
  chat:send("Это ваш автомобиль?", { image = "https://example.com/car.jpg", footer = "ОСАГО",
    buttons = { "Да", { id = "no", title = "Нет" } } })
end }
--- text
фото
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "interactive",
  "interactive": {"type": "button",
    "header": {"type": "image", "image": {"link": "https://example.com/car.jpg"}},
    "body": {"text": "Это ваш автомобиль?"},
    "footer": {"text": "ОСАГО"},
    "action": {"buttons": [
      {"type": "reply", "reply": {"id": "Да", "title": "Да"}},
      {"type": "reply", "reply": {"id": "no", "title": "Нет"}}]}}}]
--- no_log
level=error

=== preview_url = true is set on the text object; absent, it is left out
--- script
return { on_message = function(chat, msg)
  chat:send("Полис: https://example.com/osago", { preview_url = true })
  chat:send("Без превью: https://example.com/osago", { preview_url = false })
end }
--- text
ссылка
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "text", "text": {"body": "Полис: https://example.com/osago", "preview_url": true}},
 {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79991234567",
  "type": "text", "text": {"body": "Без превью: https://example.com/osago"}}]
--- no_log
level=error

=== a contact known only by a business-scoped user id is answered with "recipient", not "to"
--- script
return { on_message = function(chat, msg)
  chat:send(("Здравствуйте, %s (%s)"):format(chat.contact.name, chat.contact.wa_id))
end }
--- webhook
{"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
  "value": {"messaging_product": "whatsapp",
    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    "contacts": [{"profile": {"name": "Kim", "username": "@kim"}, "user_id": "US.13491208655302741918"}],
    "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.BSUID1",
                  "type": "text", "text": {"body": "hi from a username"}}]}}]}]}
--- sends
[{"messaging_product": "whatsapp", "recipient_type": "individual", "recipient": "US.13491208655302741918",
  "type": "text", "text": {"body": "Здравствуйте, Kim (US.13491208655302741918)"}}]
--- no_log
level=error
