-- insurance.lua - a car-insurance questionnaire (the example from the i-Digital guide): yes/no
-- questions as quick replies, the answers kept in chat.session, and a contact message with a
-- button to the company's site at the end.

local SITE = "https://example.com/osago"

-- The questions, in order. Each is answered with one of its buttons (at most 3, labels up to
-- 20 characters: Parley refuses anything WhatsApp would).
local QUESTIONS = {
  { key = "personal", text = "Автомобиль будет использоваться в личных целях?", buttons = { "Да", "Нет" } },
  { key = "drivers", text = "Сколько водителей будет вписано в полис?", buttons = { "Один", "Двое", "Больше двух" } },
  { key = "experience", text = "Стаж самого молодого водителя больше 3 лет?", buttons = { "Да", "Нет" } },
}

local function ask(chat, i)
  local q = QUESTIONS[i]
  chat.session.step = i
  chat:send(q.text, { buttons = q.buttons, footer = ("Вопрос %d из %d"):format(i, #QUESTIONS) })
end

local function finish(chat)
  local a = chat.session.answers
  chat.session.step = nil
  chat:send(("Спасибо! Личные цели: %s, водителей: %s, стаж больше 3 лет: %s. Расчёт стоимости — на сайте.")
    :format(a.personal, a.drivers, a.experience))
  chat:send("Свяжитесь с нами.", { buttons = { { title = "Перейти на сайт", url = SITE } } })
end

return {
  on_message = function(chat, msg)
    local step = chat.session.step
    if step then
      -- A typed answer instead of a press: repeat the question.
      chat:send("Пожалуйста, ответьте кнопкой ниже.")
      return ask(chat, step)
    end
    chat.session.answers = {}
    chat:send(("Здравствуйте%s! Рассчитаем ОСАГО за три вопроса.")
      :format(chat.contact.name and (", " .. chat.contact.name) or ""))
    ask(chat, 1)
  end,

  on_button = function(chat, press)
    local step = chat.session.step
    if not step then
      return chat:send("Напишите что-нибудь, чтобы начать расчёт.")
    end
    chat.session.answers[QUESTIONS[step].key] = press.title
    if step < #QUESTIONS then
      ask(chat, step + 1)
    else
      finish(chat)
    end
  end,
}
