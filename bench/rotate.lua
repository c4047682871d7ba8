-- wrk script: rotates over prepared GET requests and counts the responses by status.
-- BENCH_REQUESTS names a file with one request a line: "path<TAB>Name: value<TAB>Name: value",
-- or "POST path<TAB>…" with a pseudo-header "Body: …" holding the body.
-- With BENCH_STRIDE=N (wrk's thread count), thread k sends lines k+1, k+1+N, … so that no line
-- is sent twice while there are lines left (for requests that are accepted once only).
-- At the end it prints one line "BENCH_JSON {...}" with the figures bench/run.py reads.

local threads = {}

function setup(thread)
   thread:set("thread_number", #threads)
   table.insert(threads, thread)
end

function init(args)
   requests = {}
   for line in io.lines(os.getenv("BENCH_REQUESTS")) do
      local method, path = line:match("^(%u+) ([^\t]+)")
      if not method then
         method, path = "GET", line:match("^([^\t]+)")
      end
      local headers = {}
      local body = nil
      for name, value in line:gmatch("\t([^:\t]+): ([^\t]*)") do
         if name == "Body" then body = value else headers[name] = value end
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
   end
   stride = tonumber(os.getenv("BENCH_STRIDE") or "")
   if stride then
      position = thread_number + 1 - stride
   else
      stride = 1
      -- Threads start at different places so that they do not ask for the same key together.
      -- BENCH_START moves every thread's start, so that runs one after the other (the priming
      -- of the caches) reach every request, not only the first ones.
      position = (thread_number * 7919 + tonumber(os.getenv("BENCH_START") or "0")) % #requests
   end
   statuses = {}
end

function request()
   position = position + stride
   if position > #requests then position = (position - 1) % #requests + 1 end
   return requests[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      parts[#parts + 1] = string.format('"%d": %d', status, n)
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": {%s}, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
      summary.duration, summary.requests, summary.bytes,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
      math.floor(latency:percentile(99)), latency.max,
      table.concat(parts, ", "),
      errors.connect, errors.read, errors.write, errors.timeout))
end
