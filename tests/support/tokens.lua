-- wrk script: GET $TOKENS_PATH (default "/") with each token of the file $TOKENS_FILE in turn,
-- one per line. Used by the memory e2e test and by make soak's valid client.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local path = os.getenv("TOKENS_PATH") or "/"
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. tokens[i]})
end
