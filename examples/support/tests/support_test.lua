-- Scenario tests for the support line: `parley test examples/support/tests/support_test.lua`
use("../parley.json", { name = "Анна" })

local GREETING = "Здравствуйте! Это поддержка «Связь+»…"
local MENU = { type = "list", text = "Чем помочь?", footer = "Поддержка «Связь+»",
               list = { button = "Разделы",
                        rows = { "Тарифы", "Доставка", "Оплата", "Статус заказа", "Оператор" } } }

-- The operators work in Moscow time. The fake clock starts at the wall clock and only moves
-- forward, so a test that needs a time of the week moves to the next <wday> hh:mm in UTC+3
-- (wday as os.date: 1 = Sunday … 7 = Saturday), away from holidays and the days before them.
local OFFSET = 3 * 3600
local HOLIDAYS = { ["01-01"] = true, ["01-02"] = true, ["01-07"] = true, ["03-08"] = true,
                   ["05-01"] = true, ["05-09"] = true, ["06-12"] = true, ["11-04"] = true }
local function at(wday, hh, mm)
  local here = os.time() + OFFSET
  local midnight = here // 86400 * 86400
  for d = 0, 28 do
    local t = midnight + d * 86400 + hh * 3600 + mm * 60
    if t > here + 60 and os.date("!*t", t).wday == wday and not HOLIDAYS[os.date("!%m-%d", t)]
        and not HOLIDAYS[os.date("!%m-%d", t + 86400)] then
      advance(t - here)
      return t - OFFSET
    end
  end
  error("no such day in the next four weeks")
end

-- Read and ignore whatever the bot sent so far.
local function drain()
  while pcall(skip) do end
end

test("a first-time customer gets the greeting and the menu", function()
  send("Добрый день")
  expect{ text = GREETING }
  expect(MENU)
  expect_none()
end)

test("a topic from the list, and back to the menu", function()
  send("Добрый день")
  skip(2)
  press("Тарифы")
  expect{ text = "«Домашний» — 100 Мбит/с, 490 ₽…", buttons = { "Подключить", "Меню" } }
  press("Меню")
  expect(MENU)
end)

test("a typed question gets a canned answer", function()
  send("Добрый день")
  skip(2)
  send("Сколько стоит подключение?")
  expect("«Домашний» — 490 ₽ в месяц, «Быстрый» — 790 ₽, «Максимум» — 1 190 ₽. Подключение бесплатно.")
  send("КАК ОПЛАТИТЬ?")
  expect("Оплатить можно картой в приложении или по счёту для юрлиц.")
  send("что-то непонятное")
  expect(MENU)
end)

test("a first message that is a known question is answered after the greeting", function()
  send("Где ваш офис?")
  expect{ text = GREETING }
  expect("Наш офис: Москва, ул. Лесная, 5. Пн–Пт 9:00–18:00, Сб 10:00–15:00.")
  expect_none()
end)

test("the order status asks for a number and checks it", function()
  send("Добрый день")
  skip(2)
  press("Статус заказа")
  expect{ text = "Напишите номер заказа — я проверю.", buttons = { "Меню" } }
  send("не помню")
  expect("Номер заказа — это цифры, например 10452. Попробуйте ещё раз.")
  send("Заказ №10452")
  expect{ text = "Заказ 10452 передан курьеру и будет у вас завтра.", buttons = { "Оператор", "Меню" } }
  assert(session().order == "10452")
end)

test("in working hours the operator takes over and the bot falls silent", function()
  at(4, 11, 0) -- Wednesday 11:00
  send("Добрый день")
  skip(2)
  press("Оператор")
  expect("Передаю вас оператору — он ответит в течение 15 минут.")
  expect_none()
  send("Алло?")
  expect_none()
  assert(session()._handoff.reason == "asked for an operator")
end)

test("an operator takes the chat, a second one cannot, and the release wakes the bot", function()
  at(4, 11, 0)
  send("Добрый день")
  skip(2)
  press("Оператор")
  skip()
  trigger("take", { operator = "Мария" })
  expect_error("already taken by Мария", function() trigger("take", { operator = "Олег" }) end)
  trigger("release")
  expect("Оператор завершил диалог. Если появятся вопросы — напишите, я на связи.")
  send("Спасибо")
  expect(MENU)
end)

test("after hours the operator button gives the away message, once in 12 hours", function()
  local sunday = at(1, 12, 0)
  local monday = (sunday + OFFSET) // 86400 * 86400 + 86400 + 9 * 3600
  send("Добрый день")
  skip(2)
  press("Оператор")
  expect("Операторы сейчас не работают. Ответим " .. os.date("!%d.%m в %H:%M", monday) .. " по Москве.")
  expect("Напишите ваш вопрос здесь — оператор ответит, как только начнёт работу.")
  send("Мой роутер не работает")
  expect_none()                              -- waiting for the operator; told already
  advance("13h")                             -- Monday 01:00
  send("Есть кто-нибудь?")
  expect{ text = "Операторы сейчас не работают…" }
  expect_none()
end)

test("a handoff nobody released ends after 48 hours", function()
  send("Добрый день")
  skip(2)
  press("Оператор")
  drain() -- one or two messages, depending on the hour the test runs
  advance("49h")
  send("Добрый день")
  expect(MENU)
end)

test("a customer back after 15 days gets the returning greeting and the menu", function()
  send("Добрый день")
  skip(2)
  press("Доставка")
  skip()
  advance("15d")
  send("Снова я")
  expect("С возвращением в «Связь+»! Чем помочь на этот раз?")
  expect(MENU)
end)
