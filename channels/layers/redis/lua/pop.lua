-- Pop up to a limit of live entries from queues in the given order.
-- KEYS: queues. ARGV: limit, now_ms, then per queue its counts hash ('' if none).
-- Returns the entries (expired ones are dropped here, never delivered).

-- include: common.lua

local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local out = {}
for i, queue in ipairs(KEYS) do
  local counts = ARGV[2 + i]
  if counts == '' then counts = nil end
  while #out < limit do
    local entries = redis.call('LPOP', queue, limit - #out)
    if not entries then break end
    for _, entry in ipairs(entries) do
      if counts then uncount(counts, entry_channel(entry)) end
      if deadline_of(entry) > now then out[#out + 1] = entry end
    end
  end
  reset_if_empty(queue, counts)
  if #out >= limit then break end
end
return out
