-- Scenario tests for the insurance questionnaire: `parley test examples/insurance/tests/insurance_test.lua`
use("../parley.json")

test("greets the customer and asks the first question", function()
  send("Хочу ОСАГО")
  expect{ text = "Здравствуйте, Тест! Рассчитаем ОСАГО за три вопроса." }
  expect{ text = "Автомобиль будет использоваться в личных целях?", buttons = { "Да", "Нет" },
          footer = "Вопрос 1 из 3" }
  expect_none()
end)

test("walks through every question and ends with the site button", function()
  send("Привет")
  skip(2)
  press("Да")
  expect{ text = "Сколько водителей будет вписано в полис?", buttons = { "Один", "Двое", "Больше двух" } }
  press("Двое")
  expect{ text = "Стаж самого молодого водителя больше 3 лет?…" }
  press("Нет")
  expect{ text = "Спасибо! Личные цели: Да, водителей: Двое, стаж больше 3 лет: Нет…" }
  expect{ type = "cta_url", buttons = { "Перейти на сайт" }, url = "https://example.com/osago" }
  assert(session().step == nil, "the questionnaire is over")
end)

test("a typed answer repeats the question", function()
  send("Привет")
  skip(2)
  send("да")
  expect("Пожалуйста, ответьте кнопкой ниже.")
  expect{ text = "Автомобиль будет использоваться в личных целях?" }
  assert(session().step == 1)
end)

test("a press a day later reopens the window and the questionnaire goes on", function()
  send("Привет")
  skip(2)
  advance("25h")
  press("Да")
  expect{ text = "Сколько водителей будет вписано в полис?" }
end)
