-- wrk script: randomized malformed bearer requests for the VM-survival test.
-- VALID_TOKEN (env) is a valid token to mutate. Each request picks one of ten kinds.
dofile(os.getenv("JWT_GUARD_WRK_COMMON"))
local valid = os.getenv("VALID_TOKEN") or "a.b.c"
local b64 = B64URL_ALPHABET
local seed = tonumber(os.getenv("SEED") or "1")
math.randomseed(seed + math.floor(os.clock() * 1000000))

local function raw_bytes(n)
  -- Header-safe bytes: visible ASCII, space, and obs-text (0x80-0xFF); never CR, LF or NUL.
  local t = {}
  for i = 1, n do
    local b = math.random(0x20, 0xFF)
    if b == 0x7F then b = 0x41 end
    t[i] = string.char(b)
  end
  return table.concat(t)
end

local header_json = {
  '{"alg":"RS256","kid":"rsa-1"}', '{"alg":"none"}', '{"alg":"HS256","kid":"rsa-1"}', '{"alg":5}',
  '{"alg":"RS256","alg":"none"}', '{"alg":"RS256","crit":["x"]}', '{}', '[]', '{"alg":"RS256","kid":{"a":1}}',
  '{"alg":"' .. string.rep("A", 3000) .. '"}', string.rep("[", 500) .. string.rep("]", 500),
}

local counter = 0
request = function()
  counter = counter + 1
  local kind = math.random(0, 9)
  local path = "/direct/x"
  local headers = {}
  local v
  if kind == 0 then
    v = "Bearer " .. pick(b64, math.random(1, 80))
  elseif kind == 1 then
    v = "Bearer " .. string.sub(valid, 1, math.random(1, #valid))
  elseif kind == 2 then
    v = "Bearer " .. pick(b64, math.random(0, 200)) .. "." .. pick(b64, math.random(0, 400)) .. "." .. pick(b64, math.random(0, 400))
  elseif kind == 3 then
    v = "Bearer " .. string.rep(pick(b64, 1), math.random(8000, 30000))
  elseif kind == 4 then
    v = raw_bytes(math.random(1, 300))
  elseif kind == 5 then
    v = "Bearer " .. pick(b64, 40) .. "." .. pick(b64, 40) .. "." .. pick(b64, 20) .. "." .. pick(b64, 60) .. "." .. pick(b64, 20)
  elseif kind == 6 then
    local h = header_json[math.random(1, #header_json)]
    local parts = {}
    for part in string.gmatch(valid, "[^.]+") do parts[#parts + 1] = part end
    v = "Bearer " .. b64url(h) .. "." .. (parts[2] or "") .. "." .. (parts[3] or "")
  elseif kind == 7 then
    local i = math.random(1, #valid)
    v = "Bearer " .. string.sub(valid, 1, i - 1) .. pick(b64 .. "+/=.", 1) .. string.sub(valid, i + 1)
  elseif kind == 8 then
    local spaces = { "Bearer  ", "Bearer\t", " Bearer ", "bearer ", "Bearer", "Basic ", "BEARER " }
    v = spaces[math.random(1, #spaces)] .. valid
  else
    path = "/direct/x?access_token=" .. pick(b64 .. "%20", math.random(0, 300)) .. "&access_token=" .. pick(b64, 10)
    headers["Cookie"] = "access_token=\"" .. pick(b64, 50) .. "\"; access_token=" .. raw_bytes(20)
    v = "Bearer " .. valid
  end
  headers["Authorization"] = v
  return wrk.format("GET", path, headers)
end
