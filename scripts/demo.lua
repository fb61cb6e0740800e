-- demo.lua - the scenario `make run` serves: a greeting with quick replies, answers to each
-- button, a link button, and a CRM trigger. Read it top to bottom; docs/lua-api.md has the rest.

local MENU = { "Тарифы", "Оператор", "Сайт" }

local function menu(chat, text)
  return chat:send(text, { buttons = MENU, footer = "Parley demo" })
end

return {
  -- The customer wrote something: greet them by name and show the menu.
  on_message = function(chat, msg)
    chat.session.messages = (chat.session.messages or 0) + 1
    if msg.type ~= "text" then
      return menu(chat, "Я понимаю только текст, но кнопки тоже работают.")
    end
    local name = chat.contact.name or "друг"
    menu(chat, ("Здравствуйте, %s! Чем помочь?"):format(name))
  end,

  -- The customer pressed one of our buttons.
  on_button = function(chat, press)
    if press.id == "Тарифы" then
      chat:send("Тариф «Базовый» — 990 ₽ в месяц, «Бизнес» — 2 490 ₽.",
        { buttons = { { id = "order", title = "Оформить" }, "Оператор" } })
    elseif press.id == "Оператор" then
      chat:send("Оператор ответит в течение 15 минут. Спасибо за ожидание!")
    elseif press.id == "Сайт" then
      chat:send("Всё о тарифах — на сайте.",
        { buttons = { { title = "Перейти на сайт", url = "https://example.com/tariffs" } } })
    elseif press.id == "order" then
      chat.session.ordered = true
      chat:send("Заявка принята. Мы напишем, когда всё будет готово.")
    end
  end,

  -- A delivery report for a message we sent.
  on_status = function(chat, status)
    if status.status == "failed" then
      print(("message %s failed: %s"):format(status.message_id or "?", status.error and status.error.code or "?"))
    end
  end,

  -- A CRM posted to /channels/demo/trigger.
  on_trigger = function(chat, event)
    if event.name == "order_ready" then
      chat:send(("Заказ %s готов!"):format(event.data.order or "?"))
    end
  end,
}
