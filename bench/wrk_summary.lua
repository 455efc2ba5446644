-- wrk's report as one JSON line, read by bench/wrk.py. Statuses other than 2xx/3xx are
-- counted (summary.errors.status) so that a loop of 401s is never taken for a rate; bytes
-- are all that was read, partial bodies included (a 200 MiB blob per request).
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "bytes": %d, "duration_us": %d, "status_errors": %d, '
      .. '"socket_errors": %d, "median_us": %.1f, "p99_us": %.1f}\n',
    summary.requests, summary.bytes, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
