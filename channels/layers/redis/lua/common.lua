-- Helpers of every script that writes to queues (included where a script says so).
--
-- A queue entry is 14 ASCII digits of deadline (ms since the epoch), one byte n, the n-byte
-- full channel name, then the payload (channels/layers/redis/codec.py). A process queue's
-- companion hash counts its entries per full channel name (channels/layers/redis/keys.py).

local function entry_channel(entry)
  local n = string.byte(entry, 15) or 0
  return string.sub(entry, 16, 15 + n)
end

-- An entry's deadline; anything unreadable (not written by this layer) counts as expired.
local function deadline_of(entry)
  return tonumber(string.sub(entry, 1, 14)) or 0
end

-- The per-socket counts describe what a process queue holds: when it holds nothing they must
-- be empty too. Dropping them then undoes any drift (a reader that died between its blocking
-- pop and its count update), so no socket stays wrongly full.
local function reset_if_empty(queue, counts)
  if counts and redis.call('LLEN', queue) == 0 then redis.call('DEL', counts) end
end

local function uncount(counts, channel)
  if redis.call('HINCRBY', counts, channel, -1) <= 0 then
    redis.call('HDEL', counts, channel)
  end
end

-- Expired entries sit at the head (one expiry for all): drop them so they stop taking room.
local function trim(queue, counts, now)
  while true do
    local head = redis.call('LINDEX', queue, 0)
    if not head or deadline_of(head) > now then return end
    redis.call('LPOP', queue)
    if counts then uncount(counts, entry_channel(head)) end
  end
end

-- Statistics counters: a channel's hash lives stats_ttl seconds from its first count (one
-- EXPIRE per window instead of one per send: sends are the hot path).
local function count(stats, field, stats_ttl)
  if redis.call('HINCRBY', stats, field, 1) == 1 and redis.call('TTL', stats) < 0 then
    redis.call('EXPIRE', stats, stats_ttl)
  end
end

local function is_full(queue, counts, channel, capacity, process_capacity)
  if counts then
    return tonumber(redis.call('HGET', counts, channel) or '0') >= capacity
      or redis.call('LLEN', queue) >= process_capacity
  end
  return redis.call('LLEN', queue) >= capacity
end

-- Queue one entry unless the channel is full. Returns 1 if queued, 0 if full.
local function push(queue, counts, stats, channel, capacity, entry, now, ttl, process_capacity,
                    stats_ttl)
  local queued = false
  -- A single-reader channel is used once (one per request body): keeping its statistics for
  -- the full window would pile up one key per use (daphne#124), so they live as its messages.
  if string.find(channel, '?', 1, true) then stats_ttl = ttl end
  if not counts then
    -- Push first and undo when over: one command fewer on the common, not-full path.
    if redis.call('RPUSH', queue, entry) <= capacity then
      queued = true
    else
      redis.call('RPOP', queue)
    end
  end
  if not queued then
    if is_full(queue, counts, channel, capacity, process_capacity) then
      trim(queue, counts, now)
      reset_if_empty(queue, counts)
      if is_full(queue, counts, channel, capacity, process_capacity) then
        count(stats, 'channel_full_count', stats_ttl)
        return 0
      end
    end
    redis.call('RPUSH', queue, entry)
  end
  redis.call('EXPIRE', queue, ttl)
  if counts then
    redis.call('HINCRBY', counts, channel, 1)
    redis.call('EXPIRE', counts, ttl)
  end
  count(stats, 'messages_count', stats_ttl)
  return 1
end
