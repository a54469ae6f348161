-- DPoP traffic for make bench: one DPoP-bound token, and a fresh proof on every request (the
-- proofs in $BENCH_PROOFS, one per line, each used once: a proof used twice is a replay).
local proofs = {}
for line in io.lines(os.getenv("BENCH_PROOFS")) do
  if #line > 0 then proofs[#proofs + 1] = line end
end
local auth = "DPoP " .. os.getenv("BENCH_DPOP_TOKEN")
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/bench", {["Authorization"] = auth, ["DPoP"] = proofs[i]})
end
