-- The wrk script of tests/integration/test_load_no_loss.py.
--
-- Every wrk thread holds one connection and sends one request per connection ("Connection:
-- close", as gunicorn's sync worker answers anyway), so a request is either answered or lost
-- with its connection. A thread counts responses up to its share (the first argument), says
-- "thread done" on stderr, and from then on sends /api/users/tail requests, which the test
-- leaves out of its accounting, until the test interrupts wrk once every thread is done.
--
-- Why not stop the thread: wrk reconnects after every "Connection: close" response, so a
-- stopped thread leaves an idle connection behind, which blocks a gunicorn sync worker until
-- its timeout. Why not keep-alive: uvicorn --workers leaves Nagle's algorithm on (uvicorn
-- issue 3149), and each response after a connection's first waits ~40 ms for a delayed ACK.
--
-- Each thread writes "<X-Request-ID> <status>" per response to <dir>/ids-<thread>.txt (the
-- second argument is <dir>), so the test can match responses with access lines one by one.
--
-- Mix (per thread): every 10th request an unknown path (404), every 50th /boom (500), the rest
-- /items/<n> (200). done() prints one JSON line with the counts of all threads.

local limit = 0
local n = 0
local threads = {}
local close = { Connection = "close" }
completed, s2xx, s4xx, s5xx = 0, 0, 0, 0

local ids
function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end

function init(args)
  limit = tonumber(args[1])
  ids = assert(io.open(args[2] .. "/ids-" .. index .. ".txt", "w"))
end

function request()
  if completed >= limit then
    return wrk.format("GET", "/api/users/tail", close)
  end
  n = n + 1
  if n % 50 == 25 then
    return wrk.format("GET", "/boom", close)
  elseif n % 10 == 0 then
    return wrk.format("GET", "/nowhere/" .. n, close)
  end
  return wrk.format("GET", "/items/" .. n, close)
end

function response(status, headers, body)
  if completed >= limit then
    return
  end
  completed = completed + 1
  ids:write(headers["x-request-id"] or headers["X-Request-ID"] or "-", " ", status, "\n")
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    s2xx = s2xx + 1
  end
  if completed == limit then
    ids:close()
    io.stderr:write("thread done\n")
    io.stderr:flush()
  end
end

function done(summary, latency, requests)
  local c, ok, client, server = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("completed")
    ok = ok + t:get("s2xx")
    client = client + t:get("s4xx")
    server = server + t:get("s5xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"completed": %d, "2xx": %d, "4xx": %d, "5xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "seconds": %.3f}\n',
    c, ok, client, server, e.connect, e.read, e.write, e.timeout, summary.duration / 1e6
  ))
end
