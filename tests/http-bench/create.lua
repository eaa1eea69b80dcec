-- One annotation per request: a random box on IMAGE of TYPE, with Basic auth.
-- wrk -s create.lua URL -- IMAGE TYPE WIDTH HEIGHT
local image, type_id, width, height
local counter = 0

function init(args)
  image, type_id, width, height = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  counter = counter + 1
  local x, y = math.random() * (width - 50), math.random() * (height - 50)
  local body = string.format(
    '{"image": %s, "annotation_type": %s, "vector": {"x1": %.1f, "y1": %.1f, "x2": %.1f, "y2": %.1f}}',
    image, type_id, x, y, x + 20, y + 20)
  return wrk.format("POST", "/api/v1/annotations/annotations/", {
    ["Authorization"] = "Basic ZXhhY3Q6YmVuY2gtcGFzc3dvcmQ=",
    ["Content-Type"] = "application/json",
  }, body)
end


function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests/s=%.0f p50=%.2fms p95=%.2fms p99=%.2fms errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
