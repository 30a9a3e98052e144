-- wrk script for bench/http.py: POST one body file over keep-alive connections and
-- print a JSON summary (requests, errors, latency percentiles in microseconds).
-- Usage: wrk -s bench/post.lua URL -- BODY_FILE [TOKENS_FILE]
-- With TOKENS_FILE (one JWT a line), each request carries the next token as its bearer
-- token: a CDS client signs a fresh one (new jti) for every call. Run wrk with -t1 so
-- all connections share this state; a file that runs out fails the run loudly.

local request_bytes, body, tokens
local next_token = 1

function init(args)
  local file = assert(io.open(args[1], "rb"))
  body = file:read("*a")
  file:close()
  if args[2] then
    tokens = {}
    for line in io.lines(args[2]) do tokens[#tokens + 1] = line end
  else
    request_bytes = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
  end
end

function request()
  if tokens == nil then
    return request_bytes
  end
  local token = assert(tokens[next_token], "out of tokens")
  next_token = next_token + 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
