-- wrk: request the paths of the file given after `--`, in order, each thread from its own
-- offset; with TOKEN set, as `Authorization: Bearer TOKEN`.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  local count = tonumber(args[2]) or 1
  index = math.floor((#paths / count) * id)
  headers = {}
  local token = os.getenv("TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index], headers)
end
