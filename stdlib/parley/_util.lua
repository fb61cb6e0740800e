-- parley._util - what the parley.* modules share: errors that name the author's line, the
-- WhatsApp limits they check at load, durations, Unicode-aware lowering and session slots.
-- Internal: scripts use parley.flow, parley.greeting, … and not this module directly.

local M = {}

-- The limits of docs/rules.md that the modules check when a script loads, so a definition
-- WhatsApp would refuse fails at load instead of at the first customer.
M.MAX_QUICK_REPLIES = 3
M.MAX_LABEL = 20      -- a quick-reply label, the list button
M.MAX_ROW_TITLE = 24
M.MAX_ROW_DESCRIPTION = 72
M.MAX_SECTION_TITLE = 24
M.MAX_ROWS = 10
M.MAX_SECTIONS = 10
M.MAX_HEADER = 60     -- header and footer
M.MAX_TEXT = 4096
M.MAX_TEXT_INTERACTIVE = 1024
M.MAX_ID = 256
M.MAX_ROW_ID = 200

local OWN = { flow = true, greeting = true, hours = true, shortcuts = true, handoff = true,
              _util = true }

-- "file:line: " of the innermost function on the stack that is not one of these modules (the
-- author's line), or "" when there is none: a C caller, or a frame Lua dropped for a tail call
-- (`return flow.new{…}` leaves no line behind).
function M.author_where()
  for level = 3, 40 do
    local _, pos = pcall(error, "", level)
    if pos ~= "" then
      local mod = pos:match("parley/([%w_]+)%.lua:%d+: $")
      if not (mod and OWN[mod]) then return pos end
    end
  end
  return ""
end

-- Raise msg at the author's line. At load (at_load true), say why a line may be missing.
function M.raise(msg, at_load)
  local pos = M.author_where()
  if pos == "" and at_load then
    local fn = msg:match("^([%w_%.]+): ") or "f"
    msg = ("%s (Lua keeps no line for `return %s{…}`: write `local bot = %s{…}` and `return bot` to see it)")
      :format(msg, fn, fn)
  end
  error(pos .. msg, 0)
end

-- A message for a value in a definition: strings quoted, the rest by type.
function M.show(v)
  if type(v) == "string" then
    local n = utf8.len(v)
    if n and n > 40 then v = v:sub(1, utf8.offset(v, 40) - 1) .. "…" end
    return (("%q"):format(v):gsub("\\\n", "\\n"))
  end
  return tostring(v)
end

-- Optimal string alignment distance between two strings (bytes; an adjacent swap counts 1).
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local best = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        best = math.min(best, d[i - 2][j - 2] + 1)
      end
      d[i][j] = best
    end
  end
  return d[#a][#b]
end

-- The first key of t (in sorted order) that the set allowed lacks, and the rest of the message:
-- "(did you mean "x"? known: a, b, c)", the known keys sorted ([1] for a label given first,
-- "did you mean" when one is within 2 edits). nil when every key is allowed.
function M.unknown_key(t, allowed)
  -- the first in order, names before other keys (a typo's "did you mean" is worth more)
  local function before(a, b)
    local sa, sb = type(a) == "string", type(b) == "string"
    if sa ~= sb then return sa end
    return tostring(a) < tostring(b)
  end
  local bad
  for k in pairs(t) do
    if not allowed[k] and (bad == nil or before(k, bad)) then bad = k end
  end
  if bad == nil then return nil end
  local known, best, best_d = {}, nil, 3
  for k in pairs(allowed) do
    if type(k) == "string" then
      known[#known + 1] = k
      local d = type(bad) == "string" and #bad <= 80 and distance(bad, k) or 3
      if d < best_d or (d == best_d and best ~= nil and k < best) then best, best_d = k, d end
    else
      known[#known + 1] = ("[%s]"):format(tostring(k))
    end
  end
  table.sort(known)
  return bad, ("(%sknown: %s)"):format(best and ("did you mean %s? "):format(M.show(best)) or "",
                                      table.concat(known, ", "))
end

-- Length in Unicode code points (what WhatsApp counts), or nil for invalid UTF-8.
function M.len(s)
  return utf8.len(s)
end

function M.is_blank(s)
  return s:gsub("\194\160", " "):gsub("\226\128[\128-\139\168\169\175]", " "):find("^%s*$") ~= nil
end

-- Check a label-like string: kind names it in the message ("label", "row title", …).
-- Returns an error message or nil.
function M.check_label(s, max, kind)
  if type(s) ~= "string" then
    return ("%s must be a string, not %s"):format(kind, type(s))
  end
  local n = M.len(s)
  if n == nil then return ("%s %s is not valid UTF-8"):format(kind, M.show(s)) end
  if M.is_blank(s) then return ("%s is empty"):format(kind) end
  if n > max then
    return ("%s %s is %d characters; WhatsApp allows %d"):format(kind, M.show(s), n, max)
  end
  return nil
end

-- Durations: a number of seconds or a string "90s", "30m", "12h", "14d".
local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

function M.duration(v)
  if type(v) == "number" and v >= 0 then return math.floor(v) end
  if type(v) == "string" then
    local n, unit = v:match("^(%d+%.?%d*)([smhd])$")
    if n then return math.floor(tonumber(n) * UNITS[unit]) end
  end
  return nil
end

-- The module's slot in chat.session (created on first use): chat.session[key].
function M.slot(chat, key, create)
  local s = chat.session
  if s == nil then
    if not create then return nil end
    s = {}
    chat.session = s
  end
  local v = s[key]
  if v == nil and create then
    v = {}
    s[key] = v
  end
  return v
end

-- chat:send with the context (a module and what it was sending) in a refusal: the rule's code
-- stays first, so logs and metrics count it as usual, and the author's line is named when one
-- is on the stack.
function M.send(chat, context, text, opts)
  local ok, res = pcall(chat.send, chat, text, opts)
  if ok then return res end
  if type(res) ~= "string" then error(res, 0) end
  local rest = res
  repeat
    local stripped
    rest, stripped = rest:gsub("^[^\n]-:%d+: ", "", 1)
  until stripped == 0
  local code, detail = rest:match("^([%l_]+): (.*)$")
  if code then
    error(M.author_where() .. code .. ": " .. context .. ": " .. detail, 0)
  end
  error(M.author_where() .. context .. ": " .. rest, 0)
end

-- Unicode-aware lower case for the scripts WhatsApp users write in most around here: ASCII,
-- Latin-1 (Ä Ö Å É …), Latin Extended-A (Š Ž Ł …), Greek and Cyrillic (А–Я, Ё, Є, І, Ї, Ў …).
-- string.lower changes ASCII only.
-- Ranges of capitals: { first, last, step between capitals, offset to the small letter }.
local CAPITALS = {
  { 0x41, 0x5A, 1, 32 },      -- A..Z
  { 0xC0, 0xD6, 1, 32 },      -- À..Ö
  { 0xD8, 0xDE, 1, 32 },      -- Ø..Þ
  { 0x100, 0x12E, 2, 1 },     -- Ā..Į (pairs)
  { 0x132, 0x136, 2, 1 },
  { 0x139, 0x147, 2, 1 },     -- Ĺ..Ň
  { 0x14A, 0x176, 2, 1 },     -- Ŋ..Ŷ
  { 0x178, 0x178, 1, 0xFF - 0x178 }, -- Ÿ
  { 0x179, 0x17D, 2, 1 },     -- Ź..Ž
  { 0x391, 0x3A1, 1, 32 },    -- Α..Ρ
  { 0x3A3, 0x3AB, 1, 32 },    -- Σ..Ϋ
  { 0x400, 0x40F, 1, 80 },    -- Ѐ..Џ (Ё, Є, І, Ї, Ў …)
  { 0x410, 0x42F, 1, 32 },    -- А..Я
  { 0x460, 0x480, 2, 1 },     -- Ѡ..Ҁ (pairs)
  { 0x48A, 0x4BE, 2, 1 },     -- Ҋ..Ҿ
  { 0x4C0, 0x4C0, 1, 15 },    -- Ӏ
  { 0x4C1, 0x4CD, 2, 1 },     -- Ӂ..Ӎ
  { 0x4D0, 0x52E, 2, 1 },     -- Ӑ..Ԯ
}

local function lower_cp(c)
  if c < 0x41 or c > 0x52E then return c end
  for _, r in ipairs(CAPITALS) do
    if c < r[1] then return c end
    if c <= r[2] then
      if (c - r[1]) % r[3] == 0 then return c + r[4] end
      return c
    end
  end
  return c
end

function M.lower(s)
  if not s:find("[\128-\255]") then return s:lower() end
  if utf8.len(s) == nil then return s:lower() end -- not UTF-8: ASCII at least
  local out, n = {}, 0
  for _, c in utf8.codes(s) do
    n = n + 1
    out[n] = lower_cp(c)
  end
  -- utf8.char takes many code points at once; keep each call's argument list small
  local parts = {}
  for i = 1, n, 200 do
    parts[#parts + 1] = utf8.char(table.unpack(out, i, math.min(i + 199, n)))
  end
  return table.concat(parts)
end

return M
