-- parley.hours - working hours and the away message ("Нет на месте" of WhatsApp Business).
-- The week is given in one UTC offset ("+03:00"): the sandbox has no time-zone database, so a
-- zone with daylight saving time needs its offset changed when the clocks change. The away
-- message goes to a contact at most once per repeat_after (12 hours by default), tracked in
-- chat.session._hours.
--
--   local hours = require "parley.hours"
--   local office = hours.new{ tz = "+03:00", days = { ["mon-fri"] = "09:00-18:00" },
--                             away = "Мы работаем с 9 до 18 по будням. Ответим утром!" }
--   return { on_message = function(chat, msg)
--     if office:reply_if_closed(chat) then return end
--     chat:send("Здравствуйте! Чем помочь?")
--   end }

local U = require "parley._util"

local M = {}

local SESSION_KEY = "_hours" -- chat.session._hours = { away_at = <unix time> }
local KEYS = { tz = true, days = true, away = true, repeat_after = true, holidays = true }
local DAYS = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" } -- os.date's wday order
local DAY_INDEX = {}
for i, d in ipairs(DAYS) do DAY_INDEX[d] = i end
local WEEK = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" }  -- for "mon-fri" ranges

local function fail(fmt, ...)
  U.raise("hours.new: " .. fmt:format(...), true)
end

-- "+03:00", "-05:30", "+0300", "+3", "UTC", "Z" -> seconds east of UTC, or nil.
local function parse_tz(tz)
  if tz == "UTC" or tz == "Z" or tz == "utc" then return 0 end
  local sign, h, m = tz:match("^([+-])(%d%d?):?(%d%d)$")
  if not sign then
    sign, h = tz:match("^([+-])(%d%d?)$")
    m = "0"
  end
  if not sign then return nil end
  h, m = tonumber(h), tonumber(m)
  if h > 14 or m > 59 or h * 60 + m > 14 * 60 then return nil end
  local s = (h * 60 + m) * 60
  return sign == "-" and -s or s
end

-- "09:00" -> minutes since midnight; "24:00" only as an end.
local function parse_time(s, is_end)
  local h, m = s:match("^(%d%d?):(%d%d)$")
  if not h then return nil end
  h, m = tonumber(h), tonumber(m)
  if m > 59 then return nil end
  if h == 24 and m == 0 and is_end then return 24 * 60 end
  if h > 23 then return nil end
  return h * 60 + m
end

-- "09:00-18:00" -> { from, to } in minutes.
local function parse_interval(s, where)
  if type(s) ~= "string" then
    fail('%s: %s is not "HH:MM-HH:MM"', where, U.show(s))
  end
  local a, b = s:gsub("%s", ""):match("^([^-]+)%-([^-]+)$")
  local from, to = a and parse_time(a, false), b and parse_time(b, true)
  if not from or not to then
    fail('%s: %s is not "HH:MM-HH:MM" (hours 00-24, minutes 00-59)', where, U.show(s))
  end
  if to <= from then
    fail('%s: %s ends before it starts; a night shift is two intervals: '
         .. '"22:00-24:00" on one day and "00:00-06:00" on the next', where, U.show(s))
  end
  return { from = from, to = to }
end

-- A day's value: "09:00-18:00", { "09:00-13:00", "14:00-18:00" } or false (closed).
local function parse_day(v, where)
  if v == false then return {} end
  local list = type(v) == "table" and v or { v }
  if type(v) == "table" and #v == 0 then
    fail('%s: give "HH:MM-HH:MM", a list of them, or false for a day off', where)
  end
  local out = {}
  for i, s in ipairs(list) do out[i] = parse_interval(s, where) end
  table.sort(out, function(x, y) return x.from < y.from end)
  for i = 2, #out do
    if out[i].from < out[i - 1].to then fail("%s: the intervals overlap", where) end
  end
  return out
end

-- days = { mon = …, ["mon-fri"] = …, sat = false } -> week[1..7] (os.date wday order).
local function parse_days(days)
  if type(days) ~= "table" then
    fail('days must be a table like { ["mon-fri"] = "09:00-18:00", sat = "10:00-15:00" }, not %s', type(days))
  end
  local week, given = {}, {}
  local keys = {}
  for k in pairs(days) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local where = type(k) == "string" and k:match("^[%a_][%w_]*$") and "days." .. k
                  or ("days[%s]"):format(U.show(k))
    local names = {}
    if type(k) == "string" and DAY_INDEX[k] then
      names = { k }
    elseif type(k) == "string" and k:match("^%a%a%a%-%a%a%a$") then
      local a, b = k:match("^(%a+)%-(%a+)$")
      local ia, ib
      for i, d in ipairs(WEEK) do
        if d == a then ia = i end
        if d == b then ib = i end
      end
      if not ia or not ib or ib < ia then
        fail("%s: a range of days runs from mon to sun, like \"mon-fri\"", where)
      end
      for i = ia, ib do names[#names + 1] = WEEK[i] end
    else
      fail('%s: days are mon, tue, wed, thu, fri, sat, sun or a range like "mon-fri"', where)
    end
    local intervals = parse_day(days[k], where)
    for _, d in ipairs(names) do
      if given[d] then fail("%s: %s is already given by %s", where, d, given[d]) end
      given[d] = where
      week[DAY_INDEX[d]] = intervals
    end
  end
  for i = 1, 7 do week[i] = week[i] or {} end
  return week
end

local function parse_holidays(list)
  if list == nil then return {} end
  if type(list) ~= "table" then
    fail('holidays must be a list of dates like { "2025-01-01", "03-08" }, not %s', type(list))
  end
  local set = {}
  for i, d in ipairs(list) do
    if type(d) ~= "string" or not (d:match("^%d%d%d%d%-%d%d%-%d%d$") or d:match("^%d%d%-%d%d$")) then
      fail('holidays[%d]: %s is not "YYYY-MM-DD" (one day) or "MM-DD" (every year)', i, U.show(d))
    end
    local mm, dd = d:match("(%d%d)%-(%d%d)$")
    if tonumber(mm) < 1 or tonumber(mm) > 12 or tonumber(dd) < 1 or tonumber(dd) > 31 then
      fail("holidays[%d]: %s is not a date", i, U.show(d))
    end
    set[d] = true
  end
  return set
end

local Hours = {}
Hours.__index = Hours

---Build an office from its week; bad times, days and offsets raise at once, naming the line.
---@param opts HoursOptions
---@return Hours
function M.new(opts)
  if type(opts) ~= "table" then
    fail("takes a table { tz = \"+03:00\", days = { … }, away = \"…\" }, not %s", type(opts))
  end
  local bad, known = U.unknown_key(opts, KEYS)
  if bad ~= nil then fail("unknown key %s %s", U.show(bad), known) end
  if type(opts.tz) ~= "string" then
    fail('tz = "+03:00" is missing: the UTC offset of the office (the sandbox has no time-zone names)')
  end
  local offset = parse_tz(opts.tz)
  if offset == nil then
    fail('tz = %s is not a UTC offset like "+03:00", "-05:00" or "UTC" '
         .. '(time-zone names such as "Europe/Moscow" are not available)', U.show(opts.tz))
  end
  local away = opts.away
  if away ~= nil and type(away) ~= "function" then
    local err = U.check_label(away, U.MAX_TEXT, "away")
    if err then fail("%s", err) end
  end
  local every = 12 * 3600
  if opts.repeat_after ~= nil then
    every = U.duration(opts.repeat_after)
    if every == nil then
      fail('repeat_after must be a duration like "12h", "30m", "1d" or seconds, not %s',
           U.show(opts.repeat_after))
    end
  end
  return setmetatable({
    offset = offset, week = parse_days(opts.days), away = away, every = every,
    holidays = parse_holidays(opts.holidays),
  }, Hours)
end

-- The office's wall clock at Unix time t: os.date("!*t") fields.
local function local_fields(self, t)
  return os.date("!*t", t + self.offset)
end

local function is_holiday(self, t)
  return self.holidays[os.date("!%Y-%m-%d", t + self.offset)]
      or self.holidays[os.date("!%m-%d", t + self.offset)] or false
end

-- office:open([now]) -> true when the office is open at Unix time now (default: os.time()).
function Hours:open(now)
  now = now or os.time()
  if is_holiday(self, now) then return false end
  local f = local_fields(self, now)
  local minute = f.hour * 60 + f.min
  for _, iv in ipairs(self.week[f.wday]) do
    if minute >= iv.from and minute < iv.to then return true end
  end
  return false
end

-- office:next_open([now]) -> now when open, else the Unix time the office opens next (nil when
-- it never does: no working days at all).
function Hours:next_open(now)
  now = now or os.time()
  if self:open(now) then return now end
  local day0 = (now + self.offset) // 86400 * 86400 - self.offset -- midnight in the office
  for d = 0, 400 do
    local midnight = day0 + d * 86400
    if not is_holiday(self, midnight) then
      local wday = local_fields(self, midnight).wday
      for _, iv in ipairs(self.week[wday]) do
        local t = midnight + iv.from * 60
        if t > now then return t end
      end
    end
  end
  return nil
end

-- office:date(fmt [, t]) -> os.date(fmt, t) on the office's clock ("%H:%M", "%d.%m", …).
function Hours:date(fmt, t)
  return os.date("!" .. fmt, (t or os.time()) + self.offset)
end

-- office:reply_if_closed(chat [, now]) -> closed, sent. When the office is closed, send the away
-- message unless this contact got it less than repeat_after ago.
function Hours:reply_if_closed(chat, now)
  now = now or os.time()
  if self:open(now) then return false, false end
  if self.away == nil then return true, false end
  local st = U.slot(chat, SESSION_KEY, true)
  if st.away_at ~= nil and now - st.away_at < self.every and now >= st.away_at then
    return true, false
  end
  local text = self.away
  if type(text) == "function" then text = text(chat, self:next_open(now), self) end
  if not text then return true, false end
  U.send(chat, "hours away", text)
  st.away_at = now
  return true, true
end

return M
