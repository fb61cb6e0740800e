---@meta parley
-- Annotations for lua-language-server (LuaLS): what Parley passes to a scenario (chat, events),
-- what chat:send takes, and the types of the stdlib modules (stdlib/parley/*.lua, which carry
-- their own ---@param lines). Parley never loads this file. Point LuaLS at the stdlib folder
-- ("workspace.library": ["<parley>/stdlib"], see docs/tutorial.md) and type your handlers:
--
--   ---@type Handlers
--   local bot = {
--     on_message = function(chat, msg) chat:send("Вы написали: " .. (msg.text or "")) end,
--   }
--   return bot

-- ---------------------------------------------------------------------------------------
-- The scenario
-- ---------------------------------------------------------------------------------------

---The table a scenario file returns. Every handler is optional; any other key that starts
---with `on_` is an error at load.
---@class Handlers
---@field on_message? fun(chat: Chat, msg: Message) The customer wrote (text, media, location, …).
---@field on_button? fun(chat: Chat, press: Press) The customer pressed a button or picked a list row.
---@field on_status? fun(chat: Chat, status: Status) A message we sent was sent / delivered / read / failed.
---@field on_trigger? fun(chat: Chat, event: TriggerEvent) Another system posted to /channels/{id}/trigger.

---The contact of a conversation.
---@class Contact
---@field wa_id string The customer's WhatsApp id: digits without "+", or a business-scoped id "US.…".
---@field name? string The profile name from the latest webhook.

---The conversation with one contact on one channel, valid during the handler call it was passed to.
---@class Chat
---@field channel string The channel id from parley.json.
---@field contact Contact
---@field session table<string, any> Persisted per conversation: strings, numbers, booleans, tables (lists or records). Saved when the handler returns without an error.
local Chat = {}

---Check a free-form message against the WhatsApp rules and queue it. Raises `<code>: <detail>`
---(e.g. `label_too_long`) when it breaks a rule, and `window_closed` outside the 24-hour window.
---@param text? string|number The body; nil only for an image or a document without buttons.
---@param opts? SendOptions
---@return string id The local message id (status.message_id in on_status).
function Chat:send(text, opts) end

---Queue a template message (the only kind allowed outside the 24-hour window).
---@param name string
---@param opts? TemplateOptions
---@return string id
function Chat:template(name, opts) end

---Seconds left in the 24-hour customer-service window; 0 when it is closed.
---@return integer
function Chat:window() end

---Record the contact's consent to business-initiated messages.
---@param source? string Where the consent came from (default "script").
function Chat:opt_in(source) end

-- ---------------------------------------------------------------------------------------
-- chat:send options
-- ---------------------------------------------------------------------------------------

---@class SendOptions
---@field buttons? Button[] Up to 3 quick replies, or one URL button (or one call button).
---@field header? string A text header (≤ 60 characters); only with buttons or a list.
---@field footer? string A footer (≤ 60 characters); only with buttons or a list.
---@field preview_url? boolean Plain text only: preview the first URL.
---@field list? ListOptions A list message (up to 10 rows).
---@field image? string|MediaOptions An image by link, or { link =, caption = }.
---@field document? string|DocumentOptions A document by link, or { link =, caption =, filename = }.

---A quick reply given as its title (its id is the title), or a table.
---@alias Button string|ButtonSpec

---@class ButtonSpec
---@field title string The label, 1–20 characters.
---@field id? string A quick reply's id (what press.id will be); ≤ 256 characters.
---@field url? string A URL button: an absolute http(s):// link.
---@field phone? string A call button: an international number.

---@class ListOptions
---@field button string The label of the button that opens the list, 1–20 characters.
---@field rows? ListRow[] A single section's rows (or use sections).
---@field title? string The single section's title.
---@field sections? ListSection[] Up to 10 sections, titled when there are several.

---@class ListSection
---@field title? string ≤ 24 characters.
---@field rows ListRow[]

---@class ListRow
---@field title string 1–24 characters.
---@field id? string Defaults to the title; ≤ 200 characters, unique in the list.
---@field description? string ≤ 72 characters.

---@class MediaOptions
---@field link string A public absolute http(s):// URL.
---@field caption? string

---@class DocumentOptions: MediaOptions
---@field filename? string

---@class TemplateOptions
---@field lang? string The language code (default: the channel's "language").
---@field params? string[]|table<string, string> Values for {{1}}, {{2}}… or for named placeholders.
---@field header? string|TemplateHeader The TEXT header's parameter, or a media header's link.
---@field buttons? string[] Values for the template's dynamic buttons.

---@class TemplateHeader
---@field link? string An IMAGE, VIDEO or DOCUMENT header: a public absolute http(s):// URL.
---@field text? string A TEXT header's parameter (the same as giving the string).

-- ---------------------------------------------------------------------------------------
-- Events
-- ---------------------------------------------------------------------------------------

---@alias MessageType "text"|"image"|"document"|"audio"|"video"|"sticker"|"location"|"contacts"|"unsupported"

---What on_message receives.
---@class Message
---@field id string The message's wamid.
---@field type MessageType
---@field text? string The text, or the caption of an image, video or document.
---@field timestamp integer Unix seconds (the provider's clock).
---@field context? MessageContext Present for a reply or a forward.
---@field media? Media For image, document, audio, video, sticker.
---@field location? Location
---@field contacts? table[] Shared contact cards as Meta sends them.
---@field unsupported? { type: string, subtype?: string }
---@field errors? table[] Meta's errors array, when it sends one.

---@class MessageContext
---@field id? string The quoted message's wamid.
---@field from? string
---@field forwarded? boolean
---@field frequently_forwarded? boolean

---@class Media
---@field id string
---@field mime_type? string
---@field sha256? string
---@field caption? string
---@field filename? string
---@field url? string
---@field voice? boolean Audio only.
---@field animated? boolean Stickers only.

---@class Location
---@field latitude number
---@field longitude number
---@field name? string
---@field address? string
---@field url? string

---What on_button receives.
---@class Press
---@field kind "reply"|"list"|"template"|"typed" How it came: typed only from parley.flow (the customer typed a label).
---@field id string The button's id, the row's id or the template button's payload.
---@field title string The label the customer saw.
---@field description? string List rows only.
---@field message_id? string The wamid of the press.
---@field timestamp? integer Unix seconds.
---@field context? { id: string, from?: string } id: the wamid of the message that carried the button.

---What on_status receives.
---@class Status
---@field status "sent"|"delivered"|"read"|"played"|"failed"
---@field message_id? string The local id chat:send returned.
---@field wamid? string The provider's id (absent when the send itself failed).
---@field timestamp integer Unix seconds.
---@field recipient? string
---@field error? { code: integer, title?: string, details?: string } For failed.
---@field conversation? table
---@field pricing? table
---@field biz_opaque_callback_data? string

---What on_trigger receives.
---@class TriggerEvent
---@field name string The request's "event".
---@field data? table The request's "data" object.
---@field id? string The request's idempotency id.

-- ---------------------------------------------------------------------------------------
-- parley.flow
-- ---------------------------------------------------------------------------------------

---@class FlowDefinition
---@field start string The first screen a customer sees.
---@field screens table<string, FlowScreen> Screens by name (no ':' in names).
---@field on_text? string|fun(chat: Chat, msg: Message, screen: string): string? Typed text on a screen without its own on_text.

---@class FlowScreen
---@field text string|fun(chat: Chat): string? The message; a function may return nil to send nothing.
---@field buttons? FlowOption[] Up to 3 buttons.
---@field list? FlowList A list instead of buttons (up to 10 rows).
---@field header? string|fun(chat: Chat): string? Only with buttons or a list.
---@field footer? string|fun(chat: Chat): string? Only with buttons or a list.
---@field on_enter? fun(chat: Chat): string? Runs whenever the screen is shown; may return another screen's name to go there instead.
---@field on_text? string|fun(chat: Chat, msg: Message, screen: string): string? What typed text does here: a screen name, or a function that returns one (or nil to stay).

---A button or list row: `{ "Label", go = "screen" }`.
---@class FlowOption
---@field [1] string? The label (or use title =).
---@field title? string
---@field go? string The screen to show next.
---@field run? fun(chat: Chat, press: Press): string? Runs first; may return a screen name that overrides go.
---@field url? string Buttons only: a URL button (alone on its screen).
---@field description? string Rows only, ≤ 72 characters.

---@class FlowList
---@field button string The label that opens the list.
---@field rows? FlowOption[]
---@field title? string
---@field sections? { title?: string, rows: FlowOption[] }[]

---What flow.new returns: the handlers plus methods.
---@class Flow: Handlers
---@field on_message fun(chat: Chat, msg: Message): boolean
---@field on_button fun(chat: Chat, press: Press): boolean Returns false for a press that is not the flow's.
local Flow = {}

---Show screen `name` (running its on_enter) and make it the current one.
---@param chat Chat
---@param name string
---@return string? id The local id of the message sent, if any.
function Flow:go(chat, name) end

---The customer's current screen, or nil before their first message.
---@param chat Chat
---@return string?
function Flow:current(chat) end

---Forget the customer's screen: their next message starts at `start`.
---@param chat Chat
function Flow:reset(chat) end

---The screen names, sorted.
---@return string[]
function Flow:screens() end

-- ---------------------------------------------------------------------------------------
-- parley.greeting
-- ---------------------------------------------------------------------------------------

---@class GreetingOptions
---@field first? string|fun(chat: Chat): string? For a customer who writes for the first time.
---@field returning? string|false|fun(chat: Chat, days: integer): string? After a silence of after_days (default: first; false: none).
---@field after_days? number Days of silence before the returning greeting (default 14).

-- ---------------------------------------------------------------------------------------
-- parley.hours
-- ---------------------------------------------------------------------------------------

---A day's hours: "09:00-18:00", { "09:00-13:00", "14:00-18:00" }, or false for a day off.
---@alias HoursDay string|string[]|false

---@class HoursOptions
---@field tz string The UTC offset: "+03:00", "-05:00", "UTC".
---@field days table<string, HoursDay> Keys mon … sun or ranges such as "mon-fri"; missing days are off.
---@field away? string|fun(chat: Chat, opens: integer?, office: Hours): string? The away message.
---@field repeat_after? string|integer How soon a contact may get the away message again ("12h" by default).
---@field holidays? string[] "YYYY-MM-DD" (one day) or "MM-DD" (every year).

---@class Hours
local Hours = {}

---True when the office is open at Unix time now (default: os.time()).
---@param now? integer
---@return boolean
function Hours:open(now) end

---now when open, else the Unix time the office opens next (nil if it never does).
---@param now? integer
---@return integer?
function Hours:next_open(now) end

---os.date(fmt, t) on the office's clock.
---@param fmt string
---@param t? integer
---@return string
function Hours:date(fmt, t) end

---When closed, send the away message unless this contact got it less than repeat_after ago.
---@param chat Chat
---@param now? integer
---@return boolean closed
---@return boolean sent
function Hours:reply_if_closed(chat, now) end

-- ---------------------------------------------------------------------------------------
-- parley.shortcuts
-- ---------------------------------------------------------------------------------------

---@class ShortcutEntry: SendOptions
---@field words string|string[] Words or phrases; "цен*" matches words that start with "цен".
---@field reply string|fun(chat: Chat, text: string): string?

---@class Shortcuts
local Shortcuts = {}

---The entry that answers text (and the word that matched), or nil.
---@param text string?
---@return { index: integer, reply: string|function }? entry
---@return string? word
function Shortcuts:match(text) end

---Send the matching entry's reply; true when it answered.
---@param chat Chat
---@param text string|Message|nil
---@return boolean
function Shortcuts:answer(chat, text) end

-- ---------------------------------------------------------------------------------------
-- parley.handoff
-- ---------------------------------------------------------------------------------------

---@class HandoffInfo
---@field since integer Unix time the handoff started.
---@field reason? string
---@field operator? string Who took it (handoff.take).
---@field expires_at? integer

---@class HandoffStartOptions
---@field expires? string|integer The handoff ends by itself after this long ("24h").

---@class HandoffWrapOptions
---@field on_release? fun(chat: Chat, event: TriggerEvent) After the "release" event (the window may be closed: check chat:window()).
---@field on_take? fun(chat: Chat, event: TriggerEvent) After a successful "take".
---@field on_waiting? fun(chat: Chat, event: Message|Press) For what the customer sends during a handoff.
---@field events? { start?: string, take?: string, release?: string } Rename the trigger events.
