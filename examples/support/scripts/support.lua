-- support.lua - the support line of a small internet provider, built from the stdlib:
--   parley.greeting   a greeting for first-time customers and after 14 days of silence
--   parley.flow       the menu: a list of topics, a screen per topic, an order-status question
--   parley.shortcuts  canned answers when the customer types a question instead of choosing
--   parley.hours      the operators' working hours and the away message
--   parley.handoff    "Оператор": the bot falls silent until an operator releases the chat
-- The operators share this number in their inbox and release a conversation by posting
-- {"event": "release"} to /channels/support/trigger (see README.md).

local flow = require "parley.flow"
local greeting = require "parley.greeting"
local hours = require "parley.hours"
local shortcuts = require "parley.shortcuts"
local handoff = require "parley.handoff"

-- Operators work in Moscow time (UTC+3, no daylight saving time).
local office = hours.new{
  tz = "+03:00",
  days = { ["mon-fri"] = "09:00-18:00", sat = "10:00-15:00", sun = false },
  holidays = { "01-01", "01-02", "01-07", "03-08", "05-01", "05-09", "06-12", "11-04" },
  away = function(chat, opens, office)
    return ("Операторы сейчас не работают. Ответим %s по Москве."):format(office:date("%d.%m в %H:%M", opens))
  end,
}

local greet = greeting.new{
  first = "Здравствуйте! Это поддержка «Связь+». Я бот: расскажу о тарифах, доставке и оплате, "
    .. "проверю заказ, а если нужно — позову оператора.",
  returning = "С возвращением в «Связь+»! Чем помочь на этот раз?",
  after_days = 14,
}

local faq = shortcuts.new{
  { words = { "цен*", "стоимост*", "тариф*", "сколько стоит" },
    reply = "«Домашний» — 490 ₽ в месяц, «Быстрый» — 790 ₽, «Максимум» — 1 190 ₽. Подключение бесплатно." },
  { words = { "доставк*", "курьер*", "роутер*" },
    reply = "Роутер привезёт курьер за 1–2 дня, доставка бесплатная." },
  { words = { "оплат*", "карт*", "счет*" },
    reply = "Оплатить можно картой в приложении или по счёту для юрлиц." },
  { words = { "адрес", "офис*", "где вы" },
    reply = "Наш офис: Москва, ул. Лесная, 5. Пн–Пт 9:00–18:00, Сб 10:00–15:00." },
}

local menu = flow.new{
  start = "menu",
  -- typed text anywhere: a canned answer if we have one, else the menu again
  on_text = function(chat, msg)
    if faq:answer(chat, msg) then return nil end
    return "menu"
  end,
  screens = {
    menu = {
      text = "Чем помочь?",
      footer = "Поддержка «Связь+»",
      list = { button = "Разделы", rows = {
        { "Тарифы", go = "tariffs", description = "Цены и скорость" },
        { "Доставка", go = "delivery", description = "Роутер и подключение" },
        { "Оплата", go = "payment", description = "Карта, счёт" },
        { "Статус заказа", go = "order", description = "Где мой заказ" },
        { "Оператор", go = "operator", description = "Живой человек" },
      } },
    },
    tariffs = {
      text = "«Домашний» — 100 Мбит/с, 490 ₽\n«Быстрый» — 500 Мбит/с, 790 ₽\n«Максимум» — 1 Гбит/с, 1 190 ₽",
      buttons = { { "Подключить", go = "operator" }, { "Меню", go = "menu" } },
    },
    delivery = {
      text = "Роутер привезёт курьер за 1–2 дня, доставка бесплатная. Мастер подключит его в тот же день.",
      buttons = { { "Меню", go = "menu" } },
    },
    payment = {
      text = "Оплатить можно картой в приложении или по счёту для юрлиц.",
      buttons = { { "Меню", go = "menu" } },
    },
    order = {
      text = "Напишите номер заказа — я проверю.",
      buttons = { { "Меню", go = "menu" } },
      on_text = function(chat, msg)
        local number = msg.text and msg.text:match("%d%d%d%d+")
        if number == nil then
          chat:send("Номер заказа — это цифры, например 10452. Попробуйте ещё раз.")
          return nil
        end
        chat.session.order = number
        return "order_status"
      end,
    },
    order_status = {
      text = function(chat)
        return ("Заказ %s передан курьеру и будет у вас завтра."):format(chat.session.order)
      end,
      buttons = { { "Оператор", go = "operator" }, { "Меню", go = "menu" } },
    },
    operator = {
      on_enter = function(chat)
        handoff.start(chat, "asked for an operator", { expires = "48h" })
        office:reply_if_closed(chat) -- the away message, at most once in 12 hours
      end,
      text = function(chat)
        if office:open() then return "Передаю вас оператору — он ответит в течение 15 минут." end
        return "Напишите ваш вопрос здесь — оператор ответит, как только начнёт работу."
      end,
    },
  },
}

return handoff.wrap({
  on_message = function(chat, msg)
    if greet(chat) then
      menu:reset(chat)                           -- new and returning customers start at the menu
      if faq:answer(chat, msg) then return end   -- …unless they opened with a question we know
    end
    menu.on_message(chat, msg)
  end,
  on_button = menu.on_button,
}, {
  -- the customer writes while waiting for an operator: after hours, say when we open
  on_waiting = function(chat)
    office:reply_if_closed(chat)
  end,
  -- an operator released the conversation: back to the bot
  on_release = function(chat)
    menu:reset(chat)
    if chat:window() > 0 then
      chat:send("Оператор завершил диалог. Если появятся вопросы — напишите, я на связи.")
    end
  end,
})
