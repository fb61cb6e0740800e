-- parley.hours: the week in a UTC offset, lunch breaks, holidays, the next opening, and the away
-- message at most once per 12 hours per contact. The fixture office (fixtures/hours.lua) is in
-- +03:00: Mon-Fri 09:00-13:00 and 14:00-18:00, Sat 10:00-14:00, closed on Sunday and 1 January.
use("fixtures/stdlib.json", { channel = "hours" })

local OFFSET = 3 * 3600

-- The fake clock starts at the wall clock and only moves forward, so a test that needs a time
-- of the week computes the distance: move to the next <wday> hh:mm in +03:00 (wday as os.date:
-- 1 = Sunday … 7 = Saturday), skipping the New Year days. Returns that time (Unix seconds).
local function at(wday, hh, mm)
  local here = os.time() + OFFSET
  local midnight = here // 86400 * 86400
  for d = 0, 21 do
    local t = midnight + d * 86400 + hh * 3600 + mm * 60
    local f = os.date("!*t", t)
    local md = os.date("!%m-%d", t)
    if t > here + 60 and f.wday == wday and md ~= "12-31" and md ~= "01-01" and md ~= "01-02" then
      advance(t - here)
      return t - OFFSET
    end
  end
  error("no such day")
end

-- Wall-clock times in the office, as Unix seconds (2025-06-04 is a Wednesday).
local WED_1030, WED_1330, WED_1759, WED_1800 = 1749022200, 1749033000, 1749049140, 1749049200
local WED_0859, WED_0900 = 1749016740, 1749016800
local FRI_1900, SAT_1100, SAT_1500, SUN_1200 = 1749225600, 1749283200, 1749297600, 1749373200
local NEW_YEAR_1000, NEW_YEARS_EVE_1900 = 1767250800, 1767196800

local function open_at(t)
  trigger("open", { t = t })
  return expect{}.text
end

test("open(t) follows the week, the lunch break and the holidays", function()
  send("Привет")
  skip()
  assert(open_at(WED_0859) == "false", "08:59 on Wednesday is before opening")
  assert(open_at(WED_0900) == "true", "09:00 on Wednesday opens")
  assert(open_at(WED_1030) == "true", "10:30 on Wednesday is open")
  assert(open_at(WED_1330) == "false", "13:30 on Wednesday is the lunch break")
  assert(open_at(WED_1759) == "true", "17:59 on Wednesday is open")
  assert(open_at(WED_1800) == "false", "18:00 on Wednesday is closed (the end is exclusive)")
  assert(open_at(SAT_1100) == "true", "11:00 on Saturday is open")
  assert(open_at(SAT_1500) == "false", "15:00 on Saturday is closed")
  assert(open_at(SUN_1200) == "false", "Sunday is a day off")
  assert(open_at(NEW_YEAR_1000) == "false", "1 January is a holiday, though a Thursday")
end)

test("next_open finds the next opening in the office's time", function()
  send("Привет")
  skip()
  trigger("next_open", { t = WED_1030 })
  expect("2025-06-04 10:30")                 -- open now: now
  trigger("next_open", { t = WED_1330 })
  expect("2025-06-04 14:00")                 -- after lunch
  trigger("next_open", { t = FRI_1900 })
  expect("2025-06-07 10:00")                 -- Saturday's short day
  trigger("next_open", { t = NEW_YEARS_EVE_1900 })
  expect("2026-01-02 09:00")                 -- past the holiday
end)

test("during working hours the bot answers", function()
  at(4, 10, 30) -- Wednesday
  send("Привет")
  expect("Здравствуйте! Менеджер ответит.")
  expect_none()
end)

test("on a day off the away message goes once per 12 hours", function()
  local sunday = at(1, 12, 0)
  local monday = (sunday + OFFSET) // 86400 * 86400 + 86400 + 9 * 3600 -- office clock
  send("Привет")
  expect("Мы сейчас не работаем. Откроемся " .. os.date("!%d.%m в %H:%M", monday) .. ".")
  expect_none()
  send("Алло?")
  expect_none()                              -- already told, 0 hours ago
  assert(session()._hours.away_at >= sunday)
  advance("13h")                             -- Monday 01:00: still closed, 13 hours later
  send("Есть кто?")
  expect{ text = "Мы сейчас не работаем. Откроемся …" }
  advance("9h")                              -- Monday 10:00
  send("Доброе утро")
  expect("Здравствуйте! Менеджер ответит.")
end)

test("the away message is counted per contact", function()
  at(1, 12, 0)
  send("Привет")
  expect{ text = "Мы сейчас не работаем…" }
  contact("79990000001", "Олег")
  send("Привет")
  expect{ text = "Мы сейчас не работаем…" }
  contact("79991234567", "Тест") -- contact() outlives the test (runtime/scenario.c)
end)

test("bad times, offsets and days fail at hours.new, naming the line", function()
  send("Привет")
  skip()
  trigger("check", { case = "hours_time" })
  expect('cases.lua:88: hours.new: days.mon: "09:00-18:60" is not "HH:MM-HH:MM" (hours 00-24, minutes 00-59)')
  trigger("check", { case = "hours_tz" })
  expect('cases.lua:93: hours.new: tz = "Europe/Moscow" is not a UTC offset like "+03:00", "-05:00" or "UTC"…')
  trigger("check", { case = "hours_night" })
  expect('cases.lua:98: hours.new: days.fri: "22:00-02:00" ends before it starts…')
  trigger("check", { case = "hours_day" })
  expect('cases.lua:103: hours.new: days.monday: days are mon, tue, wed, thu, fri, sat, sun or a range like "mon-fri"')
  trigger("check", { case = "hours_twice" })
  expect('cases.lua:108: hours.new: days["mon-fri"]: fri is already given by days.fri')
end)
