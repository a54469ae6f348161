-- Opaque tokens for make bench's cold introspection row: a new token on every request, so each
-- one costs an introspection call (to the loopback endpoint bench/run.py starts).
math.randomseed(os.time())
local run = tostring(math.random(1, 1000000000))
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/bench", {["Authorization"] = "Bearer op-" .. run .. "-" .. n})
end
