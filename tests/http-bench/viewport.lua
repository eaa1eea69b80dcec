-- A 2,000 x 2,000 px viewport list of IMAGE at a random place, as the viewer asks for it.
-- wrk -s viewport.lua URL -- IMAGE WIDTH HEIGHT
local image, width, height

function init(args)
  image, width, height = args[1], tonumber(args[2]), tonumber(args[3])
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local x, y = math.random() * (width - 2000), math.random() * (height - 2000)
  local path = string.format(
    "/api/v1/annotations/annotations/?image=%s&deleted=false&in_bbox=%.0f,%.0f,%.0f,%.0f&limit=10000",
    image, x, y, x + 2000, y + 2000)
  return wrk.format("GET", path, {["Authorization"] = "Basic ZXhhY3Q6YmVuY2gtcGFzc3dvcmQ="})
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests/s=%.0f p50=%.2fms p95=%.2fms p99=%.2fms errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
