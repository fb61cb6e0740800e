-- parley.shortcuts: canned replies by keyword, matched case-insensitively (Cyrillic and Finnish
-- capitals included), ё as е, whole words unless the word ends with *, phrases, first entry wins.
use("fixtures/stdlib.json", { channel = "shortcuts" })

local PRICE = "Базовый — 990 ₽, Бизнес — 2 490 ₽."

test("a keyword in capitals and with punctuation answers", function()
  send("ЦЕНА?")
  expect{ text = PRICE, buttons = { "Оформить" } }
  expect_none()
end)

test("a phrase matches across any case and spacing", function()
  send("Скажите, СКОЛЬКО   Стоит подписка")
  expect{ text = PRICE }
end)

test("a word ending in * matches the words that start with it", function()
  send("Какие цены на доставку?")
  expect{ text = PRICE }                     -- "цен*": the first entry wins over "доставк*"
  send("Сроки ДОСТАВКИ")
  expect("Доставляем за 1–3 дня.")
end)

test("* matches at the start of a word only, and a plain word only whole", function()
  send("бесценный совет")
  expect("Не нашёл ответа. Напишите «цена» или «доставка».")
  send("Ёлочка")                             -- "ёлка" is a whole word, not a prefix
  expect("Не нашёл ответа. Напишите «цена» или «доставка».")
end)

test("ё and е are the same letter, in either case", function()
  send("Елки есть?")
  expect("Ёлки в продаже с 20 декабря.")
  send("ЁЛКА")
  expect("Ёлки в продаже с 20 декабря.")
end)

test("Finnish capitals are lowered too", function()
  send("HYVÄÄ PÄIVÄÄ!")
  expect("Hei! Miten voin auttaa?")
end)

test("a reply function gets the text", function()
  send("Где мой заказ 12345?")
  expect("Заказ 12345 в пути.")
end)

test("no match: answer returns false and the script goes on", function()
  send("Позовите человека")
  expect("Не нашёл ответа. Напишите «цена» или «доставка».")
end)

test("normalize and lower are available to scripts", function()
  send("Привет")
  skip()
  trigger("normalize", { text = "  «ЁЖИК» — в ТУМАНЕ!!! " })
  expect("ежик в тумане")
  trigger("lower", { text = "ПРИВЕТ, Ёж! ÄÖÅ Straße" })
  expect("привет, ёж! äöå straße")
end)

test("a bad entry fails at shortcuts.new, naming the line", function()
  send("Привет")
  skip()
  trigger("check", { case = "shortcuts_reply" })
  expect('cases.lua:113: shortcuts.new: entry 2: reply is missing (a string, or a function(chat, text))')
  trigger("check", { case = "shortcuts_buttons" })
  expect('cases.lua:118: shortcuts.new: entry 1: button 1: label "Оформить подписку сейчас" is 24 '
         .. 'characters; WhatsApp allows 20')
end)
