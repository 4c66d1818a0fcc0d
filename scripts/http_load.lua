-- wrk script for scripts/http_load.sh: random ids and locales, single GETs or 50-id batches.
-- Environment: IDS (file, one id per line), LOCALES (file), MODE ("get" or "batch"),
-- BATCH (ids per batch, default 50). Prints one machine-readable RESULT line at the end.
local ids, locales = {}, {}
local mode = os.getenv("MODE") or "get"
local batch = tonumber(os.getenv("BATCH") or "50")

local function load(path, into)
  for line in io.lines(path) do
    if #line > 0 then into[#into + 1] = line end
  end
end

local function escape(s)
  return (s:gsub("[^%w%-%._~:]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  load(os.getenv("IDS"), ids)
  load(os.getenv("LOCALES"), locales)
  math.randomseed(os.time() + (seed or 0) * 7919)
end

function request()
  local locale = locales[math.random(#locales)]
  if mode == "batch" then
    local parts = {}
    for i = 1, batch do parts[i] = jstr(ids[math.random(#ids)]) end
    return wrk.format("POST", "/v1/" .. locale .. "/records:batch",
      { ["Content-Type"] = "application/json" }, "[" .. table.concat(parts, ",") .. "]")
  end
  return wrk.format("GET", "/v1/" .. locale .. "/records/" .. escape(ids[math.random(#ids)]))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f requests=%d errors=%d status_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
