-- webhook.lua - wrk script: posts the signed webhooks that bench/gen.py wrote, each one once.
--
--   wrk -t T -c C -d D -s bench/webhook.lua http://127.0.0.1:PORT/webhook -- FILE FIRST COUNT T
--
-- FILE has one request per line, "<signature>\t<body>". Thread t (0-based) of T takes the lines
-- FIRST+t, FIRST+t+T, ... below FIRST+COUNT, so no two threads ever send the same body. A thread
-- that runs out of lines goes round again, with the message id changed ("wamid.R<round>.…") and
-- the body signed anew (HMAC-SHA256 through LuaJIT's FFI and the libcrypto that wrk links), so
-- every request of a run is a new event, never a duplicate that Parley would skip.
--
-- Environment:
--   BENCH_APP_SECRET   the app secret (needed only to re-sign after a round)
--   BENCH_RATE         optional: requests per second for the whole run (soak mode); without it
--                      wrk sends as fast as the connections allow
--   BENCH_SUMMARY      optional: a file where done() writes one "key=value" per line

local ffi = require("ffi")

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
int usleep(unsigned int usec);
const void *EVP_sha256(void);
unsigned char *HMAC(const void *md, const void *key, int key_len, const unsigned char *data,
                    size_t data_len, unsigned char *out, unsigned int *out_len);
]]

local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local function now_ns(clock) -- 0: CLOCK_REALTIME (to compare with the fake provider's times)
  ffi.C.clock_gettime(clock, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

-- ---- main state: one setup() per thread, then done() ----

local threads = {}
-- wrk runs each thread's init() in the main thread, one after the other, and starts each thread
-- right after its init: thread 0 would post alone while thread 1 still loads. So every init
-- counts itself in `ready`, a C int that all Lua states share, and no thread sends before all
-- are loaded (by then wrk is about to start its clock).
local ready

function setup(thread)
  if ready == nil then
    ready = ffi.new("int[1]")
  end
  thread:set("tid", #threads)
  thread:set("ready_addr", tonumber(ffi.cast("uintptr_t", ready)))
  table.insert(threads, thread)
end

-- ---- thread states ----

local sigs, bodies, n, i = {}, {}, 0, 0
-- globals, so that done() can read them with thread:get()
round, ok, bad, first_us, last_us, start_ns = 0, 0, 0, 0, 0, 0
local crypto, secret, hexbyte, md, mdlen
local interval_us, next_us = 0, 0
local ready_ptr, want_ready

function init(args)
  local path, first, count, nthreads = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  assert(path and first and count and nthreads, "usage: -- FILE FIRST COUNT THREADS")
  local f = assert(io.open(path, "rb"))
  local line_no, last = 0, first + count
  local me = tid % nthreads
  for line in f:lines() do
    if line_no >= last then break end
    if line_no >= first and (line_no - first) % nthreads == me then
      local tab = line:find("\t", 1, true)
      n = n + 1
      sigs[n] = line:sub(1, tab - 1)
      bodies[n] = line:sub(tab + 1)
    end
    line_no = line_no + 1
  end
  f:close()
  assert(n > 0, "no requests for thread " .. tid .. " in " .. path)
  ready_ptr = ffi.cast("volatile int *", ready_addr)
  ready_ptr[0] = ready_ptr[0] + 1 -- only the main thread writes it
  want_ready = nthreads
  local rate = tonumber(os.getenv("BENCH_RATE") or "")
  if rate and rate > 0 then
    interval_us = 1e6 * nthreads / rate -- this thread's share of the rate
  end
end

local function resign(body)
  if crypto == nil then
    secret = assert(os.getenv("BENCH_APP_SECRET"), "BENCH_APP_SECRET is not set")
    local okc, lib = pcall(function() return ffi.C.HMAC ~= nil and ffi.C end)
    crypto = okc and lib or ffi.load("libcrypto.so.3")
    hexbyte = {}
    for b = 0, 255 do hexbyte[b] = string.format("%02x", b) end
    md, mdlen = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
  end
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, body, #body, md, mdlen)
  local hex = {}
  for k = 0, 31 do hex[k + 1] = hexbyte[md[k]] end
  return "sha256=" .. table.concat(hex)
end

local headers = { ["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = "" }

local calls = 0

function request()
  if calls < 2 then
    calls = calls + 1
    -- wrk's main thread calls thread 0's request() once, to check it, before any other thread's
    -- init: that call must not wait. Every other first request waits for all to be loaded.
    if not (tid == 0 and calls == 1) and start_ns == 0 then
      while ready_ptr[0] < want_ready do ffi.C.usleep(1000) end
      start_ns = now_ns(0)
    end
  end
  i = i + 1
  if i > n then
    i, round = 1, round + 1
  end
  local body, sig = bodies[i], sigs[i]
  if round > 0 then
    body = body:gsub('"id":"wamid%.', '"id":"wamid.R' .. round .. '.', 1)
    sig = resign(body)
  end
  headers["X-Hub-Signature-256"] = sig
  return wrk.format("POST", nil, headers, body)
end

if (tonumber(os.getenv("BENCH_RATE") or "") or 0) > 0 then
  -- Paced: this thread's k-th request is due at start + k * interval; wrk calls delay() before
  -- each request of a connection and waits that many milliseconds.
  function delay()
    local t = now_us()
    if next_us == 0 then next_us = t end
    next_us = next_us + interval_us
    local wait = (next_us - interval_us - t) / 1000
    return wait > 0 and math.floor(wait) or 0
  end
end

function response(status, hdrs, body)
  local t = now_us()
  if first_us == 0 then first_us = t end
  last_us = t
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

-- ---- main state again ----

function done(summary, latency, requests)
  local path = os.getenv("BENCH_SUMMARY")
  local tot_ok, tot_bad, rounds, first, last, start = 0, 0, 0, math.huge, 0, math.huge
  for _, t in ipairs(threads) do
    local st = t:get("start_ns")
    if st > 0 and st < start then start = st end
    tot_ok = tot_ok + t:get("ok")
    tot_bad = tot_bad + t:get("bad")
    rounds = math.max(rounds, t:get("round"))
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and f < first then first = f end
    if l > last then last = l end
  end
  local e = summary.errors
  local lines = {
    "requests=" .. summary.requests,
    "duration_us=" .. summary.duration,
    "ok=" .. tot_ok,
    "non200=" .. tot_bad,
    "errors_connect=" .. e.connect,
    "errors_read=" .. e.read,
    "errors_write=" .. e.write,
    "errors_status=" .. e.status,
    "errors_timeout=" .. e.timeout,
    "rounds=" .. rounds,
    "window_us=" .. (last > first and math.floor(last - first) or 0),
    "start_ns=" .. string.format("%.0f", start < math.huge and start or 0),
    "lat_mean_us=" .. math.floor(latency.mean),
    "lat_p50_us=" .. latency:percentile(50),
    "lat_p90_us=" .. latency:percentile(90),
    "lat_p99_us=" .. latency:percentile(99),
    "lat_p999_us=" .. latency:percentile(99.9),
    "lat_max_us=" .. latency.max,
  }
  if path then
    local f = assert(io.open(path, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
  end
end
