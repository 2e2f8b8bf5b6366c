-- The wrk side of `npm run bench` (bench/load.ts runs wrk with this script and mirrors it for autocannon).
-- BENCH_PLAN names a plan file written by bench/load.ts, one tab-separated item a line:
--   mode     requests | order | add
--   header   NAME VALUE                     sent with every request
--   request  METHOD PATH [BODY]             requests mode: rotated, one per request, across all connections
--   products FIRST COUNT                    order/add modes: the contiguous ids sold
--   buyer    TOKEN                          order/add modes: one a line, split between the threads
-- BENCH_THREADS is wrk's -t, so each thread takes its own share of the buyers.
-- done() prints one line, "BENCH_RESULT " and JSON: status counts (wrk itself only counts statuses > 399),
-- X-Cache values, latency percentiles, and for the buyer modes the latency of each kind of request.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1e3 + tonumber(timespec.tv_nsec) / 1e6
end

local mode, headers, plan_requests, buyers = "requests", {}, {}, {}
local first_product, product_count = 0, 0
for line in io.lines(os.getenv("BENCH_PLAN")) do
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
  local kind = fields[1]
  if kind == "mode" then mode = fields[2]
  elseif kind == "header" then headers[fields[2]] = fields[3]
  elseif kind == "request" then
    local body = fields[4]
    if body == "" then body = nil end
    plan_requests[#plan_requests + 1] = { method = fields[2], path = fields[3], body = body }
  elseif kind == "products" then first_product, product_count = tonumber(fields[2]), tonumber(fields[3])
  elseif kind == "buyer" then buyers[#buyers + 1] = fields[2]
  end
end

local threads, thread_count = {}, tonumber(os.getenv("BENCH_THREADS") or "1")
function setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
end

-- Per thread (each has its own Lua state): status and X-Cache counts, and per-kind latencies in the buyer modes.
-- Flat tables only: wrk's thread:get() crashes copying a table that holds tables.
counts, cache, latency_add, latency_place, ok_add, ok_place = {}, {}, {}, {}, 0, 0

local formatted, next_request = {}, 0
local idle, ready, sent_at, buyer_tokens = {}, {}, {}, {}

function init(args)
  if mode == "requests" then
    for i, r in ipairs(plan_requests) do formatted[i] = wrk.format(r.method, r.path, headers, r.body) end
    if #plan_requests == 1 then
      -- One fixed request: wrk sends it pre-built, without calling request().
      wrk.method, wrk.path, wrk.body = plan_requests[1].method, plan_requests[1].path, plan_requests[1].body
      for name, value in pairs(headers) do wrk.headers[name] = value end
    end
    next_request = thread_index -- threads start apart, so they do not request the same paths in step
  else
    for i, token in ipairs(buyers) do
      if (i - 1) % thread_count == thread_index then
        buyer_tokens[i] = token
        idle[#idle + 1] = i
      end
    end
  end
end

local function buyer_request(buyer, kind)
  local h = { authorization = "Bearer " .. buyer_tokens[buyer], ["content-type"] = "application/json" }
  for name, value in pairs(headers) do h[name] = value end
  -- The service echoes X-Request-Id: the response tells which buyer and which step it answers.
  h["x-request-id"] = "b" .. buyer .. (kind == "add" and "a" or "p")
  sent_at[buyer] = now_ms()
  if kind == "place" then return wrk.format("POST", "/api/v1/orders", h, "{}") end
  local product
  if mode == "order" then
    product = first_product + math.random(0, product_count - 1)
  else
    -- Each buyer adds one of its own ten products, as bench/pgbench/add-to-cart.sql does: bounded carts.
    product = first_product + ((buyer - 1) * 10 + math.random(0, 9)) % product_count
  end
  return wrk.format("POST", "/api/v1/cart/items", h, '{"product_id":' .. product .. ',"quantity":1}')
end

if mode ~= "requests" then
  function request()
    local buyer = table.remove(ready)
    if buyer then return buyer_request(buyer, "place") end
    -- Each connection has at most one request out and a thread has twice as many buyers as connections, so a
    -- buyer is free unless many requests were lost (a request built but never sent, a connection failed
    -- mid-request); then a busy one is borrowed.
    buyer = table.remove(idle) or next(buyer_tokens)
    return buyer_request(buyer, "add")
  end
elseif #plan_requests > 1 then
  function request()
    next_request = next_request % #formatted + 1
    return formatted[next_request]
  end
end

function response(status, response_headers, body)
  counts[status] = (counts[status] or 0) + 1
  local hit = response_headers["x-cache"]
  if hit then cache[hit] = (cache[hit] or 0) + 1 end
  if mode == "requests" then return end
  local id = response_headers["x-request-id"]
  local buyer, step = string.match(id or "", "^b(%d+)([ap])$")
  buyer = tonumber(buyer)
  if not buyer or not buyer_tokens[buyer] then return end
  local ok = status >= 200 and status < 300
  local elapsed = now_ms() - sent_at[buyer]
  if step == "a" then
    latency_add[#latency_add + 1] = elapsed
    if ok then ok_add = ok_add + 1 end
  else
    latency_place[#latency_place + 1] = elapsed
    if ok then ok_place = ok_place + 1 end
  end
  if step == "a" and ok and mode == "order" then ready[#ready + 1] = buyer else idle[#idle + 1] = buyer end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.min(#sorted, math.floor(p / 100 * #sorted) + 1)]
end

local function json(value)
  if type(value) == "table" then
    local parts = {}
    for k, v in pairs(value) do parts[#parts + 1] = string.format("%q:%s", tostring(k), json(v)) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(value)
end

function done(summary, latency, requests)
  local statuses, caches, kinds = {}, {}, {}
  local merged, ok = { add = {}, place = {} }, { add = 0, place = 0 }
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("counts")) do statuses[code] = (statuses[code] or 0) + n end
    for value, n in pairs(thread:get("cache")) do caches[value] = (caches[value] or 0) + n end
    for _, kind in ipairs({ "add", "place" }) do
      for _, ms in ipairs(thread:get("latency_" .. kind)) do merged[kind][#merged[kind] + 1] = ms end
      ok[kind] = ok[kind] + thread:get("ok_" .. kind)
    end
  end
  for kind, list in pairs(merged) do
    if #list > 0 then
      table.sort(list)
      kinds[kind] = { count = #list, ok = ok[kind], p50 = percentile(list, 50), p99 = percentile(list, 99) }
    end
  end
  local e = summary.errors
  io.write("BENCH_RESULT ", json({
    requests = summary.requests,
    seconds = summary.duration / 1e6,
    p50 = latency:percentile(50) / 1e3,
    p99 = latency:percentile(99) / 1e3,
    errors = e.connect + e.read + e.write + e.timeout,
    statuses = statuses,
    cache = caches,
    kinds = kinds,
  }), "\n")
end
