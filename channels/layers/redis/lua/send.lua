-- One send: the hot path. The common case (a normal or '?' channel with room) runs first, as
-- four plain commands and nothing else; only a process channel or a full queue goes on to the
-- helpers of common.lua, whose definitions alone would cost as much as a command on every send.
-- KEYS: queue, channel stats hash, global stats hash, counts hash (process channels only).
-- ARGV: entry, capacity, ttl, stats_ttl, process_capacity, now_ms, channel.
-- Returns 1 if queued, 0 if full.

if #KEYS == 3 then
  local capacity = tonumber(ARGV[2])
  if redis.call('RPUSH', KEYS[1], ARGV[1]) <= capacity then
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    if redis.call('HINCRBY', KEYS[2], 'messages_count', 1) == 1
        and redis.call('TTL', KEYS[2]) < 0 then
      redis.call('EXPIRE', KEYS[2], ARGV[4])
    end
    redis.call('HINCRBY', KEYS[3], 'messages_count', 1)
    return 1
  end
  redis.call('RPOP', KEYS[1])
end

-- include: common.lua

local counts = KEYS[4]
local ok = push(KEYS[1], counts, KEYS[2], ARGV[7], tonumber(ARGV[2]), ARGV[1],
                tonumber(ARGV[6]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[3], ok == 1 and 'messages_count' or 'channel_full_count', 1)
return ok
