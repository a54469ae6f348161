-- Realistic traffic for make bench: the tokens in $BENCH_TOKENS (one per line, one user each),
-- requested in Zipf(1.0) order: user i with probability proportional to 1/i.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
end
local n = #tokens
local cdf, sum = {}, 0
for i = 1, n do
  sum = sum + 1 / i
  cdf[i] = sum
end
for i = 1, n do
  cdf[i] = cdf[i] / sum
end
math.randomseed(os.time())

-- The least i with cdf[i] >= u.
local function draw()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

request = function()
  return wrk.format("GET", "/bench", {["Authorization"] = tokens[draw()]})
end
