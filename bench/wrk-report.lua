-- wrk script for bench/run.sh.
--
--   wrk -s bench/wrk-report.lua URL [-- REQUEST_TARGET HOST [PROXY_AUTHORIZATION]]
--
-- With arguments, every request carries REQUEST_TARGET as its request-target and HOST as its
-- Host header: that is how wrk, connected to a forward proxy, sends the absolute-form
-- `GET http://host:port/path HTTP/1.1` a proxied client sends (and, with a third argument, the
-- Proxy-Authorization a gateway client sends). Without them it is plain wrk.
-- At the end it prints one line `WRKJSON {...}` with the counts and latency percentiles
-- (microseconds), so run.sh reads figures rather than wrk's rounded human output. There is no
-- response() callback on purpose: it would make wrk hand every response to Lua and slow the
-- client down; wrk's own summary already counts non-2xx/3xx statuses as status errors.

function init(args)
  if args[1] ~= nil then
    wrk.path = args[1]
    wrk.headers["Host"] = args[2]
  end
  if args[3] ~= nil and args[3] ~= "" then
    wrk.headers["Proxy-Authorization"] = args[3]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
