-- stdlib/types/parley.lua (the annotations LuaLS reads) against what the runtime and the stdlib
-- really offer: the same methods, the same option keys, and every event key declared. A method,
-- option or event field added or renamed on one side and not the other fails here.
-- fixtures/types.lua collects the runtime's side into chat.session.
use("fixtures/stdlib.json", { channel = "types" })

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local ANNOTATIONS = here .. "../../stdlib/types/parley.lua"

-- The annotations' classes: name -> { fields = set, methods = set, parents = list }.
local function read_annotations()
  local classes, current = {}, nil
  local function class(name)
    classes[name] = classes[name] or { fields = {}, methods = {}, parents = {} }
    return classes[name]
  end
  local f = assert(io.open(ANNOTATIONS))
  for line in f:lines() do
    local name, parents = line:match("^%-%-%-@class ([%w_]+):?%s*(.*)$")
    assert(name or not line:match("^%-%-%-@class"), "a class line this test cannot read: " .. line)
    if name then
      current = class(name)
      for p in parents:gmatch("[%w_]+") do current.parents[#current.parents + 1] = p end
    elseif line:match("^%-%-%-@field ") then
      local field = line:match("^%-%-%-@field (%[?[%w_]+%]?)%??%s")
      assert(current and field, "a field outside a class or unreadable: " .. line)
      current.fields[field] = true
    elseif line:match("^%-%-%-@alias ") or not line:match("^%-%-%-") then
      current = nil
    end
    local owner, method = line:match("^function ([%w_]+):([%w_]+)%(")
    if owner then class(owner).methods[method] = true end
  end
  f:close()
  return classes
end

local CLASSES = read_annotations()

-- The fields of a class with its parents'.
local function fields(name, into)
  local c = assert(CLASSES[name], "no ---@class " .. name .. " in the annotations")
  into = into or {}
  for k in pairs(c.fields) do into[k] = true end
  for _, p in ipairs(c.parents) do fields(p, into) end
  return into
end

local function show(set)
  local r = {}
  for k in pairs(set) do r[#r + 1] = k end
  table.sort(r)
  return "{" .. table.concat(r, ", ") .. "}"
end

-- got (a list from the runtime) and want (a set from the annotations) must be the same set, or, with
-- subset, got must lie within want.
local function compare(what, got, want, subset)
  local extra, missing, seen = {}, {}, {}
  for _, k in ipairs(got) do
    seen[k] = true
    if not want[k] then extra[k] = true end
  end
  if not subset then
    for k in pairs(want) do
      if not seen[k] then missing[k] = true end
    end
  end
  if next(extra) or next(missing) then
    error(("%s: the runtime has %s that the annotations lack, the annotations have %s that the runtime lacks")
      :format(what, show(extra), show(missing)), 2)
  end
end

local function api()
  send("Привет")
  skip(2)
  return session().api
end

test("chat's and the stdlib objects' methods are the annotations'", function()
  local a = api()
  for _, class in ipairs{ "Chat", "Flow", "Hours", "Shortcuts" } do
    compare(class .. " methods", a[class], CLASSES[class].methods)
  end
end)

test("every option key the runtime accepts is an annotated field, and no other", function()
  local a = api()
  for _, class in ipairs{ "SendOptions", "ButtonSpec", "ListOptions", "ListSection", "ListRow",
                          "DocumentOptions", "TemplateOptions", "TemplateHeader", "FlowDefinition",
                          "FlowScreen", "FlowList", "GreetingOptions", "HoursOptions", "ShortcutEntry",
                          "HandoffStartOptions", "HandoffWrapOptions" } do
    compare(class .. " keys", a[class], fields(class))
  end
end)

test("a flow's buttons and rows together take the keys FlowOption declares", function()
  -- one class in the annotations for both: a button may have url, a row description
  local a = api()
  local both = {}
  for _, list in ipairs{ a.FlowButton, a.FlowRow } do
    for _, k in ipairs(list) do both[#both + 1] = k end
  end
  compare("FlowOption keys", both, fields("FlowOption"))
end)

-- Top-level keys only, of text messages, reply and list presses, statuses and triggers (what
-- `parley test` can cause): nested tables (context, media, location) are not compared.
test("every key of every event a handler gets is declared", function()
  send("Привет")
  skip(2)
  press("Да")
  press("Строка")
  status("delivered")
  status("read")
  status("failed", 131026)
  trigger("ping", { a = 1 }, "req-1")
  local seen = session().seen
  for _, class in ipairs{ "Message", "Press", "Status", "TriggerEvent" } do
    assert(seen[class], "no " .. class .. " was seen")
    compare(class .. " keys", seen[class], fields(class), true)
  end
end)

test("an unknown option names the one it is probably meant to be and all the known ones", function()
  local typo = api().typo
  local want = "chat:send options: unknown option 'buttns' (did you mean 'buttons'? known: buttons, header, "
               .. "footer, preview_url, list, image, document)"
  assert(typo:sub(-#want) == want, typo)
end)

test("an option name with a NUL byte is refused, not taken for the name before it", function()
  local nul = api().nul
  assert(nul:find("chat:send options: an option's name contains a NUL byte ('footer…')", 1, true), nul)
end)

test("of several unknown keys, a name is reported first, with its did you mean", function()
  local mixed = api().mixed
  assert(mixed:find('unknown key "frist" (did you mean "first"?', 1, true), mixed)
end)

test("a list row's press carries its description, as Meta's list_reply does; a quick reply's none", function()
  send("Привет")
  skip(2)
  press("Строка")
  local p = session().last_press
  assert(p.kind == "list" and p.title == "Строка" and p.description == "о строке", p.description)
  press("Да")
  p = session().last_press
  assert(p.kind == "reply" and p.description == nil)
end)
