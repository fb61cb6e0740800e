-- parley.flow - a scenario as named screens: each screen is a text with up to 3 buttons or a
-- list, and each button says which screen comes next. flow.new checks the whole definition
-- when the script loads and returns the handlers (on_message, on_button). The customer's
-- current screen lives in chat.session._flow, so it survives restarts and reloads.
--
--   local flow = require "parley.flow"
--   return flow.new{ start = "menu", screens = {
--     menu   = { text = "Чем помочь?", buttons = { { "Тарифы", go = "prices" } } },
--     prices = { text = "Базовый — 990 ₽", buttons = { { "Назад", go = "menu" } } },
--   } }

local U = require "parley._util"

local M = {}

local ID_PREFIX = "flow:"   -- press ids are "flow:<screen>:<label>"
local SESSION_KEY = "_flow" -- chat.session._flow = { screen = "<name>" }
local MAX_HOPS = 10         -- on_enter redirects in a row

local FLOW_KEYS = { start = true, screens = true, on_text = true }
local SCREEN_KEYS = { text = true, buttons = true, list = true, header = true, footer = true,
                      on_enter = true, on_text = true }
local BUTTON_KEYS = { [1] = true, title = true, go = true, run = true, url = true }
local ROW_KEYS = { [1] = true, title = true, go = true, run = true, description = true }
local LIST_KEYS = { button = true, rows = true, sections = true, title = true }
local SECTION_KEYS = { title = true, rows = true }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- ---- checking a definition (at load) ----

-- Everything flow.new checks raises through fail(), with the author's line in front.
local function fail(fmt, ...)
  U.raise("flow.new: " .. fmt:format(...), true)
end

local function screen_list(screens)
  local names = sorted_keys(screens)
  for i, n in ipairs(names) do names[i] = tostring(n) end
  return table.concat(names, ", ")
end

local function check_target(screens, target, where)
  if type(target) ~= "string" then
    fail("%s: go must be a screen name, not %s", where, type(target))
  end
  if screens[target] == nil then
    fail("%s: go = %s is not a screen (screens: %s)", where, U.show(target), screen_list(screens))
  end
end

local function check_text_value(v, what, where, max, required)
  if v == nil then
    if required then
      fail("%s: %s is missing (a string, or a function(chat) that returns one)", where, what)
    end
    return
  end
  if type(v) == "function" then return end
  if type(v) ~= "string" then
    fail("%s: %s must be a string or a function(chat), not %s", where, what, type(v))
  end
  local n = U.len(v)
  if n == nil then fail("%s: %s is not valid UTF-8", where, what) end
  if U.is_blank(v) then fail("%s: %s is empty", where, what) end
  if n > max then
    fail("%s: %s is %d characters; WhatsApp allows %d here", where, what, n, max)
  end
end

-- An option (a button or a list row): { "Label", go = "screen" } or { title =, run = fn }.
-- Returns the normalized { title, go, run, url, description }.
local function check_option(screens, screen, opt, i, kind, allowed, max_title)
  local where = ('screen "%s": %s %d'):format(screen, kind, i)
  if type(opt) ~= "table" then
    fail('%s must be a table like { "Label", go = "screen" }, not %s', where, type(opt))
  end
  local bad, known = U.unknown_key(opt, allowed)
  if bad ~= nil then fail("%s: unknown key %s %s", where, U.show(bad), known) end
  local title = opt[1]
  if title == nil then title = opt.title end
  if title == nil then fail('%s has no label: write { "Label", go = "screen" }', where) end
  local err = U.check_label(title, max_title, kind == "row" and "title" or "label")
  if err then fail("%s: %s", where, err) end
  where = ("%s %s"):format(where, U.show(title))
  local o = { title = title, go = opt.go, run = opt.run, url = opt.url,
              description = opt.description }
  if o.go ~= nil then check_target(screens, o.go, where) end
  if o.run ~= nil and type(o.run) ~= "function" then
    fail("%s: run must be a function(chat, press), not %s", where, type(o.run))
  end
  if o.url ~= nil then
    if type(o.url) ~= "string" or not o.url:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/%s]+") then
      fail("%s: url must be an absolute http(s):// link, not %s", where, U.show(o.url))
    end
    if o.go ~= nil or o.run ~= nil then
      fail("%s: a URL button opens the link; it cannot also have go or run", where)
    end
  elseif o.go == nil and o.run == nil then
    fail('%s does nothing: give it go = "screen" or run = function(chat, press)', where)
  end
  if o.description ~= nil then
    err = U.check_label(o.description, U.MAX_ROW_DESCRIPTION, "description")
    if err then fail("%s: %s", where, err) end
  end
  o.id = ID_PREFIX .. screen .. ":" .. title
  local max_id = kind == "row" and U.MAX_ROW_ID or U.MAX_ID
  if U.len(o.id) > max_id then
    fail("%s: the screen name and label make an id of %d characters; WhatsApp allows %d",
         where, U.len(o.id), max_id)
  end
  return o
end

local function check_buttons(screens, name, buttons, sc)
  local where = ('screen "%s"'):format(name)
  if type(buttons) ~= "table" or not is_list(buttons) then
    fail("%s: buttons must be a list of buttons", where)
  end
  if #buttons == 0 then fail("%s: buttons is empty (leave it out for a text screen)", where) end
  if #buttons > U.MAX_QUICK_REPLIES then
    fail("%s: %d buttons; WhatsApp allows %d quick replies "
         .. "(use list = { button = …, rows = { … } } for up to %d options)",
         where, #buttons, U.MAX_QUICK_REPLIES, U.MAX_ROWS)
  end
  sc.buttons = {}
  for i, b in ipairs(buttons) do
    local o = check_option(screens, name, b, i, "button", BUTTON_KEYS, U.MAX_LABEL)
    if sc.items[o.title] then fail("%s: two buttons are labelled %s", where, U.show(o.title)) end
    if o.url and #buttons > 1 then
      fail("%s: button %d %s is a URL button; WhatsApp sends a URL button alone, without other buttons",
           where, i, U.show(o.title))
    end
    sc.items[o.title] = o
    sc.buttons[i] = o
  end
end

local function check_rows(screens, name, rows, where, sc, count)
  if type(rows) ~= "table" or not is_list(rows) or #rows == 0 then
    fail("%s: rows must be a non-empty list of rows", where)
  end
  local out = {}
  for i, r in ipairs(rows) do
    count = count + 1
    local o = check_option(screens, name, r, count, "row", ROW_KEYS, U.MAX_ROW_TITLE)
    if o.url then fail("%s: a list row cannot be a URL button", where) end
    if sc.items[o.title] then fail("%s: two rows are titled %s", where, U.show(o.title)) end
    sc.items[o.title] = o
    out[i] = o
  end
  return out, count
end

local function check_list(screens, name, list, sc)
  local where = ('screen "%s": list'):format(name)
  if type(list) ~= "table" then fail("%s must be a table { button = …, rows = { … } }", where) end
  local bad, known = U.unknown_key(list, LIST_KEYS)
  if bad ~= nil then fail("%s: unknown key %s %s", where, U.show(bad), known) end
  local err = U.check_label(list.button, U.MAX_LABEL, "button")
  if list.button == nil then err = 'button is missing (the label that opens the list, e.g. "Выбрать")' end
  if err then fail("%s: %s", where, err) end
  local sections, count = {}, 0
  if list.sections ~= nil then
    if list.rows ~= nil or list.title ~= nil then
      fail("%s: give either sections = { … } or rows = { … }, not both", where)
    end
    if type(list.sections) ~= "table" or not is_list(list.sections) or #list.sections == 0 then
      fail("%s: sections must be a non-empty list of { title = …, rows = { … } }", where)
    end
    if #list.sections > U.MAX_SECTIONS then
      fail("%s: %d sections; WhatsApp allows %d", where, #list.sections, U.MAX_SECTIONS)
    end
    for i, s in ipairs(list.sections) do
      local sw = ("%s: section %d"):format(where, i)
      if type(s) ~= "table" then fail("%s must be a table { title = …, rows = { … } }", sw) end
      bad, known = U.unknown_key(s, SECTION_KEYS)
      if bad ~= nil then fail("%s: unknown key %s %s", sw, U.show(bad), known) end
      if s.title ~= nil or #list.sections > 1 then
        err = U.check_label(s.title, U.MAX_SECTION_TITLE, "title")
        if s.title == nil then err = "title is missing (needed when a list has several sections)" end
        if err then fail("%s: %s", sw, err) end
      end
      local rows
      rows, count = check_rows(screens, name, s.rows, sw, sc, count)
      sections[i] = { title = s.title, rows = rows }
    end
  else
    if list.title ~= nil then
      err = U.check_label(list.title, U.MAX_SECTION_TITLE, "title")
      if err then fail("%s: %s", where, err) end
    end
    local rows
    rows, count = check_rows(screens, name, list.rows, where, sc, count)
    sections[1] = { title = list.title, rows = rows }
  end
  if count > U.MAX_ROWS then
    fail("%s: %d rows; WhatsApp allows %d in a list", where, count, U.MAX_ROWS)
  end
  sc.list = { button = list.button, sections = sections }
end

local function check_on_text(screens, v, where)
  if v == nil or type(v) == "function" then return end
  if type(v) ~= "string" then
    fail("%s: on_text must be a screen name or a function(chat, msg), not %s", where, type(v))
  end
  if screens[v] == nil then
    fail("%s: on_text = %s is not a screen (screens: %s)", where, U.show(v), screen_list(screens))
  end
end

local function check_screen(screens, name, def)
  local where = ('screen "%s"'):format(name)
  if type(def) ~= "table" then fail("%s must be a table { text = …, buttons = { … } }", where) end
  local bad, known = U.unknown_key(def, SCREEN_KEYS)
  if bad ~= nil then fail("%s: unknown key %s %s", where, U.show(bad), known) end
  local sc = { name = name, text = def.text, header = def.header, footer = def.footer,
               on_enter = def.on_enter, on_text = def.on_text, items = {} }
  if def.buttons ~= nil and def.list ~= nil then
    fail("%s: a message has buttons or a list, not both", where)
  end
  if def.buttons ~= nil then check_buttons(screens, name, def.buttons, sc) end
  if def.list ~= nil then check_list(screens, name, def.list, sc) end
  local interactive = sc.buttons ~= nil or sc.list ~= nil
  check_text_value(def.text, "text", where, interactive and U.MAX_TEXT_INTERACTIVE or U.MAX_TEXT, true)
  for _, k in ipairs({ "header", "footer" }) do
    if def[k] ~= nil and not interactive then
      fail("%s: a %s needs buttons or a list (WhatsApp shows none on plain text)", where, k)
    end
    check_text_value(def[k], k, where, U.MAX_HEADER, false)
  end
  if def.on_enter ~= nil and type(def.on_enter) ~= "function" then
    fail("%s: on_enter must be a function(chat), not %s", where, type(def.on_enter))
  end
  check_on_text(screens, def.on_text, where)
  return sc
end

local function check(def)
  if type(def) ~= "table" then
    fail("takes a table { start = \"…\", screens = { … } }, not %s", type(def))
  end
  local bad, known = U.unknown_key(def, FLOW_KEYS)
  if bad ~= nil then fail("unknown key %s %s", U.show(bad), known) end
  local screens = def.screens
  if type(screens) ~= "table" or next(screens) == nil then
    fail("screens = { name = { text = …, buttons = … }, … } is missing or empty")
  end
  for name in pairs(screens) do
    if type(name) ~= "string" or name == "" or name:find(":", 1, true) then
      fail("screen names are non-empty strings without ':', not %s", U.show(name))
    end
  end
  if def.start == nil then fail("start = \"<screen>\" is missing (the first screen a customer sees)") end
  if screens[def.start] == nil then
    fail("start = %s is not a screen (screens: %s)", U.show(def.start), screen_list(screens))
  end
  check_on_text(screens, def.on_text, "flow")
  local out = {}
  for _, name in ipairs(sorted_keys(screens)) do
    out[name] = check_screen(screens, name, screens[name])
  end
  return out
end

-- ---- running ----

local function value(v, chat)
  if type(v) == "function" then return v(chat) end
  return v
end

local function send_screen(chat, sc)
  local text = value(sc.text, chat)
  if text == nil then return nil end -- a text function may choose to send nothing
  local opts = nil
  if sc.buttons then
    local buttons = {}
    for i, b in ipairs(sc.buttons) do
      buttons[i] = b.url and { title = b.title, url = b.url } or { id = b.id, title = b.title }
    end
    opts = { buttons = buttons }
  elseif sc.list then
    local sections = {}
    for i, s in ipairs(sc.list.sections) do
      local rows = {}
      for j, r in ipairs(s.rows) do
        rows[j] = { id = r.id, title = r.title, description = r.description }
      end
      sections[i] = { title = s.title, rows = rows }
    end
    opts = { list = { button = sc.list.button, sections = sections } }
  end
  if opts then
    opts.header = value(sc.header, chat)
    opts.footer = value(sc.footer, chat)
  end
  return U.send(chat, ('flow screen "%s"'):format(sc.name), text, opts)
end

---Build a flow from a definition, checking all of it first: a mistake raises an error that
---names the screen and the line of the flow.new call. See docs/stdlib.md#parleyflow.
---@param def FlowDefinition
---@return Flow
function M.new(def)
  local screens = check(def)
  local start, flow_on_text = def.start, def.on_text
  local api = {}
  local handlers = setmetatable({}, { __index = api })

  local function target(name, context)
    if type(name) ~= "string" or screens[name] == nil then
      U.raise(("flow: %s %s, which is not a screen (screens: %s)")
        :format(context, U.show(name), screen_list(screens)))
    end
    return name
  end

  -- Enter screen name: remember it, run on_enter (which may send the customer elsewhere),
  -- then send the screen. Returns the local id of the message sent, if any.
  local function enter(chat, name)
    for _ = 1, MAX_HOPS do
      local sc = screens[name]
      U.slot(chat, SESSION_KEY, true).screen = name
      local to = sc.on_enter and sc.on_enter(chat)
      if to == nil or to == false or to == name then return send_screen(chat, sc) end
      name = target(to, ('on_enter of screen "%s" returned'):format(name))
    end
    U.raise(("flow: on_enter redirected %d times in a row (a loop?), last to screen %s")
      :format(MAX_HOPS, U.show(name)))
  end

  local function act(chat, sc, item, press)
    local to = nil
    if item.run then
      to = item.run(chat, press)
      if to ~= nil and to ~= false then
        target(to, ('%s %s on screen "%s": run returned'):format(press.kind == "list" and "row" or "button",
                                                               U.show(item.title), sc.name))
      else
        to = nil
      end
    end
    to = to or item.go
    if to then enter(chat, to) end
  end

  -- bot.go(chat, …) instead of bot:go(chat, …) passes the chat as self
  local function check_chat(chat, method)
    if type(chat) ~= "table" or chat.contact == nil then
      U.raise(("flow: call it as bot:%s(chat, …), with a colon and the handler's chat"):format(method))
    end
  end

  -- api:current(chat) -> the name of the customer's screen, or nil before the first message
  -- (and after a reload that removed their screen).
  function api.current(_, chat)
    check_chat(chat, "current")
    local st = U.slot(chat, SESSION_KEY, false)
    local name = st and st.screen
    if name ~= nil and screens[name] ~= nil then return name end
    return nil
  end

  -- api:go(chat, name): show screen name (running its on_enter) and make it the current one.
  function api.go(_, chat, name)
    check_chat(chat, "go")
    return enter(chat, target(name, "go to"))
  end

  -- api:reset(chat): forget where the customer is; the next message starts over.
  function api.reset(_, chat)
    check_chat(chat, "reset")
    if chat.session then chat.session[SESSION_KEY] = nil end
  end

  -- api:screens() -> the sorted screen names (for tests and tools).
  function api.screens(_)
    return sorted_keys(screens)
  end

  function handlers.on_message(chat, msg)
    local cur = api.current(nil, chat)
    if cur == nil then
      enter(chat, start)
      return true
    end
    local sc = screens[cur]
    -- typing a button's label (any case) is the same as pressing it
    if msg and type(msg.text) == "string" and next(sc.items) ~= nil then
      local typed = U.lower(msg.text):gsub("^%s+", ""):gsub("%s+$", "")
      for _, title in ipairs(sorted_keys(sc.items)) do
        local item = sc.items[title]
        if not item.url and U.lower(title) == typed then
          act(chat, sc, item, { id = item.id, title = item.title, kind = "typed" })
          return true
        end
      end
    end
    local action = sc.on_text
    if action == nil then action = flow_on_text end
    if action == nil then
      enter(chat, cur)
    elseif type(action) == "string" then
      enter(chat, action)
    else
      local to = action(chat, msg, cur)
      if to ~= nil and to ~= false then
        enter(chat, target(to, ('on_text of screen "%s" returned'):format(cur)))
      end
    end
    return true
  end

  function handlers.on_button(chat, press)
    local id = press and press.id
    if type(id) ~= "string" or id:sub(1, #ID_PREFIX) ~= ID_PREFIX then return false end
    local name, title = id:sub(#ID_PREFIX + 1):match("^([^:]*):(.*)$")
    local sc = name and screens[name]
    local item = sc and sc.items[title]
    if item == nil then
      -- a button of a screen that changed since that message: show where the customer is
      enter(chat, api.current(nil, chat) or start)
      return true
    end
    act(chat, sc, item, press)
    return true
  end

  return handlers
end

return M
