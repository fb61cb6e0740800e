-- parley.handoff - hand a conversation to a human operator. While a handoff is active the bot
-- stays silent for that contact (handoff.wrap makes on_message and on_button do nothing), and
-- operators answer from the inbox their number is shared in: with a WhatsApp Business API
-- provider several managers work one number. The operators' system ends the handoff through
-- the trigger endpoint (event "release"); it can also claim the conversation for one operator
-- (event "take"), so two managers do not answer the same customer. The state is
-- chat.session._handoff = { since =, reason =, operator =, expires_at = }.
--
--   local handoff = require "parley.handoff"
--   return handoff.wrap{
--     on_message = function(chat, msg)
--       handoff.start(chat, "the customer wrote")
--       chat:send("Передаю ваш вопрос оператору.")
--     end,
--   }

local U = require "parley._util"

local M = {}

local SESSION_KEY = "_handoff"
local START_KEYS = { expires = true }
local WRAP_KEYS = { on_release = true, on_take = true, on_waiting = true, events = true }
local EVENTS = { start = "handoff", take = "take", release = "release" }

local function record(chat)
  local s = chat.session
  return s and s[SESSION_KEY]
end

---The bot goes silent for this contact until a release (or until expires has passed). Calling
---it again keeps the first start time and the operator and updates the reason.
---@param chat Chat
---@param reason? string
---@param opts? HandoffStartOptions
function M.start(chat, reason, opts)
  if type(chat) ~= "table" or chat.contact == nil then
    U.raise("handoff.start(chat, reason): the first argument must be the chat")
  end
  if reason ~= nil and type(reason) ~= "string" then
    U.raise(("handoff.start: reason must be a string, not %s"):format(type(reason)))
  end
  local expires = nil
  if opts ~= nil then
    if type(opts) ~= "table" then
      U.raise(("handoff.start: options must be a table { expires = \"24h\" }, not %s"):format(type(opts)))
    end
    local bad, known = U.unknown_key(opts, START_KEYS)
    if bad ~= nil then U.raise(("handoff.start: unknown option %s %s"):format(U.show(bad), known)) end
    if opts.expires ~= nil then
      expires = U.duration(opts.expires)
      if expires == nil then
        U.raise(("handoff.start: expires must be a duration like \"24h\" or seconds, not %s")
          :format(U.show(opts.expires)))
      end
    end
  end
  local now = os.time()
  local r = M.active(chat) and record(chat) or { since = now }
  r.reason = reason
  r.expires_at = expires and now + expires or nil
  if chat.session == nil then chat.session = {} end
  chat.session[SESSION_KEY] = r
  print(("handoff start contact=%s reason=%s"):format(chat.contact and chat.contact.wa_id or "?",
                                                     reason or "-"))
end

---True while a handoff is on: started, not released, not expired.
---@param chat Chat
---@return boolean
function M.active(chat)
  local r = record(chat)
  if r == nil then return false end
  if r.expires_at ~= nil and os.time() >= r.expires_at then return false end
  return true
end

---The active handoff, or nil.
---@param chat Chat
---@return HandoffInfo?
function M.info(chat)
  if not M.active(chat) then return nil end
  local r = record(chat)
  return { since = r.since, reason = r.reason, operator = r.operator, expires_at = r.expires_at }
end

---Claim the handoff for one operator (starting one if there is none): true, or false and the
---operator who already has it.
---@param chat Chat
---@param operator string
---@return boolean ok
---@return string? other
function M.take(chat, operator)
  if type(operator) ~= "string" or operator == "" then
    U.raise("handoff.take(chat, operator): operator must be a non-empty string (a name or an id)")
  end
  if not M.active(chat) then M.start(chat, "taken by " .. operator) end
  local r = record(chat)
  if r.operator ~= nil and r.operator ~= operator then return false, r.operator end
  r.operator = operator
  return true
end

---End the handoff; the bot answers again from the next message. True when one was active.
---@param chat Chat
---@return boolean
function M.release(chat)
  local was = M.active(chat)
  if chat.session then chat.session[SESSION_KEY] = nil end
  if was then
    print(("handoff release contact=%s"):format(chat.contact and chat.contact.wa_id or "?"))
  end
  return was
end

--- handoff.wrap(handlers [, opts]) -> handlers whose on_message and on_button do nothing while a
--- handoff is active, and whose on_trigger handles the operators' events:
---   "handoff" {reason=}  start a handoff from outside (a CRM, an operator)
---   "take" {operator=}   claim it; raises when another operator has it (the caller gets a 422)
---   "release"            end it; opts.on_release(chat, event) runs after (e.g. a goodbye)
--- Other events go to the wrapped on_trigger. opts.on_waiting(chat, msg_or_press) runs for what
--- the customer sends during a handoff (e.g. an away message at night); opts.events renames the
--- three events.
---@param handlers Handlers
---@param opts? HandoffWrapOptions
---@return Handlers
function M.wrap(handlers, opts)
  if type(handlers) ~= "table" then
    U.raise(("handoff.wrap(handlers): handlers must be a table of on_message, on_button, …, not %s")
      :format(type(handlers)), true)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    U.raise(("handoff.wrap: options must be a table, not %s"):format(type(opts)), true)
  end
  local bad, known = U.unknown_key(opts, WRAP_KEYS)
  if bad ~= nil then U.raise(("handoff.wrap: unknown option %s %s"):format(U.show(bad), known), true) end
  for _, k in ipairs({ "on_release", "on_take", "on_waiting" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      U.raise(("handoff.wrap: %s must be a function(chat, event), not %s"):format(k, type(opts[k])), true)
    end
  end
  local events = {}
  for k, v in pairs(EVENTS) do events[k] = v end
  if opts.events ~= nil then
    if type(opts.events) ~= "table" then
      U.raise("handoff.wrap: events must be a table { start =, take =, release = }", true)
    end
    for k, v in pairs(opts.events) do
      if EVENTS[k] == nil or type(v) ~= "string" then
        U.raise(("handoff.wrap: events.%s: the events are start, take and release, each a name")
          :format(tostring(k)), true)
      end
      events[k] = v
    end
  end

  local out = {}
  for k, v in pairs(handlers) do out[k] = v end
  local inner_message, inner_button, inner_trigger =
    handlers.on_message, handlers.on_button, handlers.on_trigger
  local waiting = opts.on_waiting
  out.on_message = function(chat, msg)
    if M.active(chat) then
      if waiting then waiting(chat, msg) end
      return true
    end
    if inner_message then return inner_message(chat, msg) end
  end
  out.on_button = function(chat, press)
    if M.active(chat) then
      if waiting then waiting(chat, press) end
      return true
    end
    if inner_button then return inner_button(chat, press) end
  end
  out.on_trigger = function(chat, event)
    local name, data = event.name, event.data or {}
    if name == events.start then
      M.start(chat, type(data.reason) == "string" and data.reason or "trigger")
      return true
    elseif name == events.take then
      local ok, other = M.take(chat, tostring(data.operator or ""))
      if not ok then
        error(("handoff: the conversation is already taken by %s"):format(other), 0)
      end
      if opts.on_take then opts.on_take(chat, event) end
      return true
    elseif name == events.release then
      M.release(chat)
      if opts.on_release then opts.on_release(chat, event) end
      return true
    end
    if inner_trigger then return inner_trigger(chat, event) end
  end
  return out
end

return M
