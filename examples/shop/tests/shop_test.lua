-- Scenario tests for the shop's order-status bot: `parley test examples/shop/tests/shop_test.lua`
use("../parley.json", { name = "Анна" })

local SHIPPED = { order = "A-17", tracking = "RA123456789RU", eta = "12 июня", name = "Анна" }

test("a customer who agreed gets the order_shipped template with the tracking button", function()
  trigger("opt_in", { source = "checkout" })
  local ids = trigger("order_shipped", SHIPPED)
  assert(#ids == 1)
  expect{ type = "template", template = "order_shipped", language = "ru", header = "A-17",
          params = { "Анна", "A-17", "12 июня" }, button_values = { "RA123456789RU", "order:A-17" } }
  expect_none()
end)

test("without consent the template is refused before it leaves", function()
  expect_error("not_opted_in", function() trigger("order_shipped", SHIPPED) end)
  expect_none()
end)

test("a customer who wrote before may get it without a recorded opt-in", function()
  send("Привет")
  skip()
  advance("3d")   -- the window closed long ago; writing once is consent enough
  trigger("order_shipped", SHIPPED)
  expect{ type = "template", template = "order_shipped" }
end)

test("the template's quick reply opens the window: the bot answers with the order", function()
  trigger("opt_in")
  trigger("order_shipped", SHIPPED)
  skip()
  press("order:A-17")   -- the quick reply's payload
  expect{ text = "Заказ A-17 в пути, доставка ожидается 12 июня. Трек-номер: RA123456789RU.",
          type = "cta_url", url = "https://example.com/track/RA123456789RU" }
end)

test("a typed question about the order inside the window", function()
  trigger("opt_in")
  trigger("order_shipped", SHIPPED)
  skip()
  send("Где посылка?")
  expect{ text = "Заказ A-17 в пути…" }
end)

test("no order yet: the bot asks for its number", function()
  send("где мой заказ")
  expect("Пока у нас нет отправленных заказов на ваш номер. Напишите номер заказа — проверим.")
end)

test("subscribing in the chat records the opt-in for later templates", function()
  send("Привет")
  expect{ text = "Здравствуйте! Я подскажу, где ваш заказ.", buttons = { "Где мой заказ?", "Подписаться" } }
  press("Подписаться")
  expect("Готово! Будем присылать статусы заказов и новости магазина.")
  advance("25h")
  trigger("order_shipped", SHIPPED)
  expect{ type = "template", template = "order_shipped" }
end)

test("a parameter WhatsApp would reject is refused with its code", function()
  trigger("opt_in")
  expect_error("template_param_format", function()
    trigger("order_shipped", { order = "A-17", tracking = "RA1", eta = "12\tиюня" })
  end)
end)
