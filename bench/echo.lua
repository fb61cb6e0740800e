-- echo.lua - the benchmark's scenario: small, but it does what a real first reply does. It
-- counts the customer's messages in chat.session (a session write per event) and answers every
-- text with a short text and two quick-reply buttons (the send gate checks both labels).

local BUTTONS = { { id = "operator", title = "Оператор" }, { id = "prices", title = "Тарифы" } }

return {
  on_message = function(chat, msg)
    local s = chat.session
    s.messages = (s.messages or 0) + 1
    local name = chat.contact.name or "друг"
    if msg.type ~= "text" then
      return chat:send("Я понимаю только текст.", { buttons = BUTTONS })
    end
    chat:send(("%s, спасибо! Обращение №%d принято."):format(name, s.messages),
      { buttons = BUTTONS })
  end,

  on_button = function(chat, press)
    chat.session.last_button = press.id
    chat:send(press.id == "operator" and "Оператор скоро ответит." or "Тариф «Базовый» — 990 ₽.")
  end,
}
