-- parley.shortcuts - canned replies by keyword (the "quick replies" of WhatsApp Business, but
-- answered by the bot): the first entry whose word or phrase appears in the customer's text
-- answers. Matching ignores case (Cyrillic included: string.lower knows only ASCII), treats
-- ё as е and punctuation as spaces; "цен*" matches any word that starts with "цен".
--
--   local shortcuts = require "parley.shortcuts"
--   local faq = shortcuts.new{
--     { words = { "цена", "стоимость", "сколько стоит" }, reply = "Базовый — 990 ₽ в месяц." },
--   }
--   return { on_message = function(chat, msg)
--     if not faq:answer(chat, msg.text) then chat:send("Не понял вопрос.") end
--   end }

local U = require "parley._util"

local M = {}

local ENTRY_KEYS = { words = true, reply = true, buttons = true, header = true, footer = true,
                     list = true, image = true, document = true, preview_url = true }

local function fail(fmt, ...)
  U.raise("shortcuts.new: " .. fmt:format(...), true)
end

-- Separators: ASCII punctuation and spaces, Latin-1 punctuation (« » ¿ NBSP …), the General
-- Punctuation block (— – … “ ” „ ‘ ’ and invisible spaces), and emoji.
local function is_separator(c)
  if c < 0x80 then
    return not ((c >= 0x30 and c <= 0x39) or (c >= 0x61 and c <= 0x7A) or (c >= 0x41 and c <= 0x5A))
  end
  return (c >= 0xA0 and c <= 0xBF) or c == 0xD7 or c == 0xF7 or (c >= 0x2000 and c <= 0x206F)
      or (c >= 0x2190 and c <= 0x2BFF) or c == 0x3000 or c == 0xFEFF or c >= 0x1F000
end

---Lower case, ё as е, punctuation dropped, words separated by single spaces: the form both the
---customer's text and the words are compared in.
---@param text string
---@return string
function M.normalize(text)
  local s = U.lower(text)
  s = s:gsub("ё", "е")
  if utf8.len(s) == nil then
    return (s:gsub("%W+", " "):gsub("^ ", ""):gsub(" $", ""))
  end
  local out, sep = {}, true
  for _, c in utf8.codes(s) do
    if is_separator(c) then
      if not sep then out[#out + 1] = " " end
      sep = true
    else
      out[#out + 1] = utf8.char(c)
      sep = false
    end
  end
  if out[#out] == " " then out[#out] = nil end
  return table.concat(out)
end

---text in lower case, Cyrillic and other European letters included (string.lower: ASCII only).
---@type fun(text: string): string
M.lower = U.lower

local Shortcuts = {}
Shortcuts.__index = Shortcuts

-- One word or phrase -> a matcher { plain = " цена ", prefix = false }.
local function compile(word, where)
  if type(word) ~= "string" then fail("%s must be a string, not %s", where, type(word)) end
  local prefix = word:sub(-1) == "*"
  local norm = M.normalize(prefix and word:sub(1, -2) or word)
  if norm == "" then fail("%s %s has no letters or digits", where, U.show(word)) end
  return { word = word, plain = " " .. norm .. (prefix and "" or " ") }
end

---Build a set of canned replies; the first entry whose word appears in the text answers.
---@param entries ShortcutEntry[]
---@return Shortcuts
function M.new(entries)
  if type(entries) ~= "table" or #entries == 0 then
    fail('takes a list of { words = { "цена", … }, reply = "…" }')
  end
  local list = {}
  for i, e in ipairs(entries) do
    local where = ("entry %d"):format(i)
    if type(e) ~= "table" then fail("%s must be a table { words = …, reply = … }", where) end
    local bad, known = U.unknown_key(e, ENTRY_KEYS)
    if bad ~= nil then fail("%s: unknown key %s %s", where, U.show(bad), known) end
    local words = e.words
    if type(words) == "string" then words = { words } end
    if type(words) ~= "table" or #words == 0 then
      fail('%s: words must be a list of words or phrases, like { "цена", "сколько стоит" }', where)
    end
    local matchers = {}
    for j, w in ipairs(words) do matchers[j] = compile(w, ("%s: words[%d]"):format(where, j)) end
    if e.reply == nil then fail("%s: reply is missing (a string, or a function(chat, text))", where) end
    if type(e.reply) ~= "function" then
      local interactive = e.buttons ~= nil or e.list ~= nil
      local err = U.check_label(e.reply, interactive and U.MAX_TEXT_INTERACTIVE or U.MAX_TEXT, "reply")
      if err then fail("%s: %s", where, err) end
    end
    if e.buttons ~= nil then
      if type(e.buttons) ~= "table" then fail("%s: buttons must be a list", where) end
      if #e.buttons > U.MAX_QUICK_REPLIES then
        fail("%s: %d buttons; WhatsApp allows %d quick replies", where, #e.buttons, U.MAX_QUICK_REPLIES)
      end
      for j, b in ipairs(e.buttons) do
        local title = type(b) == "table" and b.title or b
        local err = U.check_label(title, U.MAX_LABEL, "label")
        if err then fail("%s: button %d: %s", where, j, err) end
      end
    end
    local opts = nil
    for _, k in ipairs({ "buttons", "header", "footer", "list", "image", "document", "preview_url" }) do
      if e[k] ~= nil then
        opts = opts or {}
        opts[k] = e[k]
      end
    end
    list[i] = { index = i, matchers = matchers, reply = e.reply, opts = opts }
  end
  return setmetatable({ entries = list }, Shortcuts)
end

-- set:match(text) -> the entry that answers text and the word that matched, or nil.
-- The entry is { index = <its position in the list>, reply = …, … }.
function Shortcuts:match(text)
  if type(text) ~= "string" then return nil end
  local norm = " " .. M.normalize(text) .. " "
  for _, e in ipairs(self.entries) do
    for _, m in ipairs(e.matchers) do
      if norm:find(m.plain, 1, true) then return e, m.word end
    end
  end
  return nil
end

-- set:answer(chat, text) -> true when an entry matched and its reply was sent. text may also be
-- the msg of on_message (its text is used; media without a caption never matches).
function Shortcuts:answer(chat, text)
  if type(text) == "table" then text = text.text end
  local e = self:match(text)
  if e == nil then return false end
  local reply = e.reply
  if type(reply) == "function" then reply = reply(chat, text) end
  if not reply then return false end
  U.send(chat, ("shortcut %d"):format(e.index), reply, e.opts)
  return true
end

return M
