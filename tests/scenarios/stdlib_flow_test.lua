-- parley.flow: navigation between screens, lists, typed text, the screen kept in the session,
-- and the errors a bad definition raises at load (through fixtures/check.lua).
use("fixtures/stdlib.json", { channel = "flow", name = "Анна" })

test("the first message shows the start screen", function()
  send("Привет")
  expect{ type = "button", text = "Чем помочь, Анна?", header = "Поддержка", footer = "Parley",
          buttons = { "Тарифы", "Каталог", "Представиться" } }
  expect_none()
  assert(session()._flow.screen == "menu", "the current screen is kept in chat.session._flow")
end)

test("buttons go from screen to screen and back", function()
  send("Привет")
  skip()
  press("Тарифы")
  expect{ text = "Базовый — 990 ₽, Бизнес — 2 490 ₽.", buttons = { "Назад", "Заказать", "Сайт" } }
  assert(session()._flow.screen == "prices")
  press("Назад")
  expect{ text = "Чем помочь, Анна?" }
  assert(session()._flow.screen == "menu")
  expect_none()
end)

test("a press carries the screen and the label in its id", function()
  send("Привет")
  local m = expect{ text = "Чем помочь, Анна?" }
  assert(m.button_ids[1] == "flow:menu:Тарифы", "got id " .. tostring(m.button_ids[1]))
end)

test("a list screen sends a list and its rows navigate", function()
  send("Привет")
  skip()
  press("Каталог")
  expect{ type = "list", text = "Выберите раздел",
          list = { button = "Разделы", rows = { "Доставка", "Оплата", "Назад в меню" } } }
  press("Доставка")
  expect{ text = "Доставка за 1–3 дня.", buttons = { "Меню" } }
  assert(session()._flow.screen == "delivery")
end)

test("run does its work before go", function()
  send("Привет")
  skip()
  press("Тарифы")
  skip()
  press("Заказать")
  expect("Заказ оформлен.")
  local s = session()
  assert(s.ordered == true and s.entered == 1 and s._flow.screen == "done")
end)

test("a URL button screen", function()
  send("Привет")
  skip()
  press("Тарифы")
  skip()
  press("Сайт")
  expect{ type = "cta_url", text = "Всё о тарифах — на сайте.", buttons = { "Открыть сайт" },
          url = "https://example.com/" }
end)

test("typed text follows on_text: the screen's own, else the flow's", function()
  send("Привет")
  skip()
  send("что-нибудь")
  expect{ text = "Чем помочь, Анна?" }          -- the flow's on_text = "menu"
  press("Тарифы")
  skip()
  send("а подешевле?")
  expect{ text = "Базовый — 990 ₽…" }           -- prices has on_text = "prices"
  assert(session()._flow.screen == "prices")
end)

test("typing a button's label in any case presses it", function()
  send("Привет")
  skip()
  send("  ТАРИФЫ ")
  expect{ text = "Базовый — 990 ₽…" }
  send("назад")
  expect{ text = "Чем помочь, Анна?" }
end)

test("an on_text function reads the answer and picks the next screen", function()
  send("Привет")
  skip()
  press("Представиться")
  expect{ text = "Как вас зовут?", buttons = { "Отмена" } }
  send("Мария")
  expect{ text = "Приятно познакомиться, Мария!", buttons = { "Меню" } }
  assert(session().name == "Мария")
end)

test("a button on an older message still works", function()
  send("Привет")
  skip()
  press("Каталог")
  skip()
  press("Тарифы") -- on the menu message, two messages back
  expect{ text = "Базовый — 990 ₽…" }
  assert(session()._flow.screen == "prices")
end)

test("the screen survives between conversations' events (it is in the stored session)", function()
  send("Привет")
  skip()
  press("Каталог")
  skip()
  advance("3d")
  send("я вернулся")
  -- catalog has no on_text: the flow's on_text sends the customer to the menu
  expect{ text = "Чем помочь, Анна?" }
  trigger("where")
  expect("screen: menu")
end)

test("a screen that no longer exists (removed in a reload) restarts at start", function()
  send("Привет")
  skip()
  trigger("forget_screen")
  assert(session()._flow.screen == "removed_in_a_reload")
  send("ещё раз")
  expect{ text = "Чем помочь, Анна?" }
  assert(session()._flow.screen == "menu")
end)

test("on_enter may send the customer elsewhere", function()
  send("Привет")
  skip()
  trigger("go", { screen = "vip" })
  expect{ text = "Чем помочь, Анна?" }
  trigger("vip")
  trigger("go", { screen = "vip" })
  expect("Добро пожаловать в VIP-зал.")
end)

-- fixtures/flow.lua:61 is the line `bot:go(chat, event.data.screen)`
test("go to an unknown screen names the script's line", function()
  send("Привет")
  skip()
  local err = expect_error('flow: go to "nowhere", which is not a screen', function()
    trigger("go", { screen = "nowhere" })
  end)
  assert(err:find("fixtures/flow.lua:61: ", 1, true), "the error names the author's line: " .. err)
end)

test("a screen WhatsApp refuses at send time keeps the rule's code and names the screen", function()
  send("Привет")
  skip()
  local err = expect_error("text_too_long", function() trigger("go", { screen = "long" }) end)
  assert(err:find('fixtures/flow.lua:61: text_too_long: flow screen "long": text is 1260 characters; '
                  .. 'WhatsApp allows 1024 in a message with buttons', 1, true), err)
  assert(session()._flow.screen == "menu", "a failed handler leaves the session as it was")
end)

-- The load-time checks, through fixtures/cases.lua: each case calls flow.new on the line named
-- in the expected message (the path before the file name is cut by the fixture).
local function check(case)
  trigger("check", { case = case })
end

test("a screen with 4 buttons fails at flow.new, naming its line", function()
  send("Привет")
  skip()
  check("four_buttons")
  expect('cases.lua:16: flow.new: screen "menu": 4 buttons; WhatsApp allows 3 quick replies '
         .. '(use list = { button = …, rows = { … } } for up to 10 options)')
end)

test("a label over 20 characters fails; 20 Cyrillic letters pass", function()
  send("Привет")
  skip()
  check("long_label")
  expect('cases.lua:22: flow.new: screen "menu": button 1: label "Перейти на сайт компании" is 24 '
         .. 'characters; WhatsApp allows 20')
  check("twenty_letters")
  expect("loaded")
end)

test("an unknown go target, a missing text and an unknown start fail", function()
  send("Привет")
  skip()
  check("unknown_go")
  expect('cases.lua:34: flow.new: screen "menu": button 1 "Дальше": go = "pricez" is not a screen '
         .. '(screens: menu, prices)')
  check("missing_text")
  expect('cases.lua:40: flow.new: screen "prices": text is missing (a string, or a function(chat) '
         .. 'that returns one)')
  check("unknown_start")
  expect('cases.lua:46: flow.new: start = "mnu" is not a screen (screens: menu)')
end)

test("a typo in a screen's keys, 11 list rows, a footer on plain text, a URL button with others", function()
  send("Привет")
  skip()
  check("typo")
  expect('cases.lua:51: flow.new: screen "menu": unknown key "buttns" (did you mean "buttons"? known: buttons, '
         .. 'footer, header, list, on_enter, on_text, text)')
  check("button_key")
  expect('cases.lua:128: flow.new: screen "menu": button 1: unknown key "got" (did you mean "go"? known: [1], go, '
         .. 'run, title, url)')
  check("eleven_rows")
  expect('cases.lua:58: flow.new: screen "menu": list: 11 rows; WhatsApp allows 10 in a list')
  check("footer_on_text")
  expect('cases.lua:63: flow.new: screen "menu": a footer needs buttons or a list…')
  check("url_and_reply")
  expect('cases.lua:68: flow.new: screen "menu": button 1 "Сайт" is a URL button; WhatsApp sends a '
         .. 'URL button alone, without other buttons')
end)

test("a flow built at a module's top level names that module's line", function()
  send("Привет")
  skip()
  check("flow_module")
  expect('flow_module.lua:4: flow.new: screen "menu": button 1 "Тарифы": go = "prices" is not a screen…')
end)
