-- Scenario tests for scripts/demo.lua, the scenario `make run` serves.
use("../../parley.json", { name = "Анна" })

test("greets by name with the menu", function()
  send("Привет")
  expect{ text = "Здравствуйте, Анна! Чем помочь?", buttons = { "Тарифы", "Оператор", "Сайт" },
          footer = "Parley demo" }
  expect_none()
end)

test("each menu button answers", function()
  send("Привет")
  skip()
  press("Тарифы")
  expect{ text = "Тариф «Базовый»…", buttons = { "Оформить", "Оператор" } }
  press("Оформить")
  expect("Заявка принята. Мы напишем, когда всё будет готово.")
  assert(session().ordered == true)
  press("Оператор")
  expect("Оператор ответит в течение 15 минут. Спасибо за ожидание!")
end)

test("the site button is a URL button", function()
  send("Привет")
  skip()
  press("Сайт")
  expect{ type = "cta_url", buttons = { "Перейти на сайт" }, url = "https://example.com/tariffs" }
end)

test("a CRM trigger answers inside the window and is refused outside it", function()
  send("Привет")
  skip()
  local ids = trigger("order_ready", { order = "A-17" })
  assert(#ids == 1)
  expect("Заказ A-17 готов!")
  advance("25h")
  expect_error("window_closed", function() trigger("order_ready", { order = "A-18" }) end)
  expect_none()
end)

test("the session counts messages across the conversation", function()
  send("one")
  send("two")
  assert(session().messages == 2)
end)

test("a failed delivery reaches on_status", function()
  send("Привет")
  skip()
  status("failed", 131026)
  expect_none() -- on_status only logs; nothing is sent
end)
