-- parley.greeting - the greeting message of WhatsApp Business: one text for a customer who
-- writes for the first time, another for one who comes back after a silence (14 days by
-- default). The time of the customer's last message is kept in chat.session._greeting.
--
--   local greeting = require "parley.greeting"
--   local greet = greeting.new{ first = "Здравствуйте!", returning = "С возвращением!" }
--   return { on_message = function(chat, msg) greet(chat) end }

local U = require "parley._util"

local M = {}

local SESSION_KEY = "_greeting" -- chat.session._greeting = { seen = <unix time> }
local KEYS = { first = true, returning = true, after_days = true }

local function fail(fmt, ...)
  U.raise("greeting.new: " .. fmt:format(...), true)
end

local function check_text(v, key)
  if v == nil or type(v) == "function" then return end
  if type(v) ~= "string" then
    fail("%s must be a string or a function(chat, days), not %s", key, type(v))
  end
  local n = U.len(v)
  if n == nil then fail("%s is not valid UTF-8", key) end
  if U.is_blank(v) then fail("%s is empty", key) end
  if n > U.MAX_TEXT then fail("%s is %d characters; WhatsApp allows %d", key, n, U.MAX_TEXT) end
end

---The Unix time of the customer's latest message as the greeting recorded it, or nil for a
---customer it has not seen.
---@param chat Chat
---@return integer?
function M.last_seen(chat)
  local st = U.slot(chat, SESSION_KEY, false)
  return st and st.seen
end

---Build the greeting; greet(chat) sends the right text, records the time and returns true when
---it greeted. Call it first thing in on_message.
---@param opts GreetingOptions
---@return fun(chat: Chat): boolean greet
function M.new(opts)
  if type(opts) ~= "table" then
    fail("takes a table { first = …, returning = …, after_days = 14 }, not %s", type(opts))
  end
  local bad, known = U.unknown_key(opts, KEYS)
  if bad ~= nil then fail("unknown key %s %s", U.show(bad), known) end
  if not opts.first and not opts.returning then
    fail("give first = \"…\" (a first-time customer), returning = \"…\" (after a silence), or both")
  end
  check_text(opts.first, "first")
  if opts.returning ~= false then check_text(opts.returning, "returning") end
  local days = opts.after_days
  if days == nil then days = 14 end
  if type(days) ~= "number" or days <= 0 or days ~= days then
    fail("after_days must be a positive number of days, not %s", U.show(days))
  end
  -- like WhatsApp Business, one text serves both cases unless returning has its own
  -- (returning = false greets first-time customers only)
  local first, returning, silence = opts.first, opts.returning, math.floor(days * 86400)
  if returning == nil then returning = first end

  return function(chat)
    local now = os.time()
    local st = U.slot(chat, SESSION_KEY, true)
    local seen = st.seen
    st.seen = now
    local text
    if seen == nil then
      text = first
    elseif now - seen >= silence then
      text = returning
    end
    if type(text) == "function" then
      text = text(chat, seen and (now - seen) // 86400 or nil)
    end
    if not text then return false end
    U.send(chat, seen == nil and "greeting first" or "greeting returning", text)
    return true
  end
end

return M
