-- Helpers for jwt-guard's wrk scripts (tests/e2e/malformed.lua, make bench's floods).
-- Loaded with dofile(os.getenv("JWT_GUARD_WRK_COMMON")).

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- n characters drawn from `chars`.
function pick(chars, n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, #chars)
    t[i] = string.sub(chars, k, k)
  end
  return table.concat(t)
end

-- Unpadded base64url of a byte string.
function b64url(s)
  local out, bits, value = {}, 0, 0
  for i = 1, #s do
    value = value * 256 + string.byte(s, i)
    bits = bits + 8
    while bits >= 6 do
      bits = bits - 6
      local idx = math.floor(value / 2 ^ bits) % 64
      out[#out + 1] = string.sub(B64URL_ALPHABET, idx + 1, idx + 1)
    end
    value = value % (2 ^ bits)
  end
  if bits > 0 then
    local idx = (value * 2 ^ (6 - bits)) % 64
    out[#out + 1] = string.sub(B64URL_ALPHABET, idx + 1, idx + 1)
  end
  return table.concat(out)
end
