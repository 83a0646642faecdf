-- wrk script: cycle through a pool of pre-built raw HTTP requests (bench/wrk.py).
-- Arguments after "--": the pool file, then the number of wrk threads. The file holds
-- records "<byte count>\n<request bytes>"; thread i sends records i, i+T, i+2T, ...
-- so no two threads send the same request (a write's token is used once).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path, count = args[1], tonumber(args[2])
   local file = assert(io.open(path, "rb"))
   pool = {}
   local position = 0
   while true do
      local header = file:read("*l")
      if header == nil then break end
      local raw = file:read(tonumber(header))
      if position % count == thread_id then
         pool[#pool + 1] = raw
      end
      position = position + 1
   end
   file:close()
   assert(#pool > 0, "empty request pool")
   cursor = 0
end

function request()
   cursor = cursor % #pool + 1
   return pool[cursor]
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
