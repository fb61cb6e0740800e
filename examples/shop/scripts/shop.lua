-- The shop's order-status bot. The shop's CRM posts "order_shipped" to the trigger endpoint and
-- the customer gets the approved order_shipped template, with the tracking number in its URL
-- button: a template, because the customer may not have written for days (outside the 24-hour
-- window only templates may be sent, and only to customers who agreed to get them). When the
-- customer answers, the window is open and the bot talks freely about the order.

local TRACK_URL = "https://example.com/track/"

-- "order_shipped" from the CRM: { order = "A-17", tracking = "RA123456789RU",
-- eta = "12 июня", name = "Анна" }. Remembered in the session for the questions that follow.
local function order_shipped(chat, d)
  chat.session.order = { id = d.order, tracking = d.tracking, eta = d.eta }
  return chat:template("order_shipped", {
    header = d.order,
    params = { d.name or (chat.contact.name ~= "" and chat.contact.name) or "покупатель",
               d.order, d.eta },
    -- button 1 (URL) gets its {{1}}: https://example.com/track/<tracking>; button 2 (the quick
    -- reply "Где мой заказ?") a payload that comes back in press.id when it is pressed
    buttons = { [1] = d.tracking, [2] = "order:" .. d.order },
  })
end

local function where_is_my_order(chat)
  local o = chat.session.order
  if o == nil then
    chat:send("Пока у нас нет отправленных заказов на ваш номер. Напишите номер заказа — проверим.")
    return
  end
  chat:send(("Заказ %s в пути, доставка ожидается %s. Трек-номер: %s."):format(o.id, o.eta, o.tracking),
            { buttons = { { title = "Отследить посылку", url = TRACK_URL .. o.tracking } } })
end

local function has(text, ...)
  for _, word in ipairs({ ... }) do
    if text:find(word, 1, true) then return true end
  end
  return false
end

return {
  on_trigger = function(chat, event)
    if event.name == "order_shipped" then
      return order_shipped(chat, event.data)
    elseif event.name == "opt_in" then       -- consent given on the shop's website
      chat:opt_in(event.data and event.data.source or "crm")
    end
  end,

  on_message = function(chat, msg)
    local text = msg.text or ""
    if has(text, "Подпис", "подпис") then
      chat:opt_in("chat")
      chat:send("Готово! Будем присылать статусы заказов и новости магазина.")
    elseif has(text, "заказ", "Заказ", "посылк", "Где", "где", "трек") then
      where_is_my_order(chat)
    else
      chat:send("Здравствуйте! Я подскажу, где ваш заказ.",
                { buttons = { "Где мой заказ?", "Подписаться" } })
    end
  end,

  -- quick replies of chat:send, and the template's "Где мой заказ?" quick reply (payload
  -- "order:<id>")
  on_button = function(chat, press)
    if press.id == "Где мой заказ?" or press.id:sub(1, 6) == "order:" then
      where_is_my_order(chat)
    elseif press.id == "Подписаться" then
      chat:opt_in("button")
      chat:send("Готово! Будем присылать статусы заказов и новости магазина.")
    end
  end,
}
