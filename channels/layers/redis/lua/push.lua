-- Send to one or more channels (send_many, or a group's members on another shard).
-- KEYS: global stats hash, then per message: queue, counts hash ('' if none), stats hash.
-- ARGV: now_ms, ttl, process_capacity, stats_ttl, then per message: channel, capacity, entry.
-- Returns one flag per message: 1 queued, 0 full.

-- include: common.lua

local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local process_capacity = tonumber(ARGV[3])
local stats_ttl = tonumber(ARGV[4])
local queued, full = 0, 0
local m = 0
local flags = {}
for k = 2, #KEYS, 3 do
  local counts = KEYS[k + 1]
  if counts == '' then counts = nil end
  local a = 5 + m * 3
  local ok = push(KEYS[k], counts, KEYS[k + 2], ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2],
                  now, ttl, process_capacity, stats_ttl)
  queued = queued + ok
  full = full + 1 - ok
  m = m + 1
  flags[m] = ok
end
if queued > 0 then redis.call('HINCRBY', KEYS[1], 'messages_count', queued) end
if full > 0 then redis.call('HINCRBY', KEYS[1], 'channel_full_count', full) end
return flags
