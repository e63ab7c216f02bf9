-- Send to a group, run on the group's shard: members whose channel lives on this shard are
-- pushed to here; the others are returned (with their capacity) for one push call per shard.
-- The placement hash maps member -> "<shard index>:<capacity>", written by group_add.
-- KEYS: members sorted set, placement hash, global stats hash.
-- ARGV: now_ms, ttl, process_capacity, stats_ttl, key prefix, this shard's index, deadline
--       (14 digits), payload, membership cut-off (seconds), default capacity.
-- Returns {number queued here, remote member, its capacity, remote member, its capacity, ...}.

-- include: common.lua
-- include: prune.lua

local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local process_capacity = tonumber(ARGV[3])
local stats_ttl = tonumber(ARGV[4])
local prefix = ARGV[5]
local here = ARGV[6]
local deadline = ARGV[7]
local payload = ARGV[8]
prune(KEYS[1], KEYS[2], ARGV[9])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local result = {0}
local queued, full = 0, 0
for _, channel in ipairs(members) do
  local placement = redis.call('HGET', KEYS[2], channel)
  local shard, capacity = here, ARGV[10]
  if placement then
    local colon = string.find(placement, ':', 1, true)
    shard = string.sub(placement, 1, colon - 1)
    capacity = string.sub(placement, colon + 1)
  end
  if shard == here then
    local bang = string.find(channel, '!', 1, true)
    local name = channel
    local counts = nil
    if bang then
      name = string.sub(channel, 1, bang)
      counts = prefix .. '#c:' .. name
    end
    local entry = deadline .. string.char(#channel) .. channel .. payload
    local ok = push(prefix .. name, counts, prefix .. '#s:' .. name, channel,
                    tonumber(capacity), entry, now, ttl, process_capacity, stats_ttl)
    queued = queued + ok
    full = full + 1 - ok
  else
    result[#result + 1] = channel
    result[#result + 1] = capacity
  end
end
if queued > 0 then redis.call('HINCRBY', KEYS[3], 'messages_count', queued) end
if full > 0 then redis.call('HINCRBY', KEYS[3], 'channel_full_count', full) end
result[1] = queued
return result
