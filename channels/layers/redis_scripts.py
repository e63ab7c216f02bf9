"""Lua scripts of the Redis layer: each layer operation is one script call, one round trip.

``SEND`` (one message; the hot path) runs its common case before defining any helper; ``PUSH``
sends many (``send_many``, the other shards' part of a group send).

Queue entry layout (a list element), shared with ``redis.py``::

    14 ASCII digits   deadline, milliseconds since the epoch (sender's clock)
    1 byte            n = length of the full channel name
    n bytes           full channel name (so one list can hold every ``prefix!*`` channel)
    rest              payload: msgpack, or a Fernet token of it

Queue keys: ``<prefix><channel>`` for normal and ``?`` channels, ``<prefix><process prefix>``
(the name up to ``!``) for every process-specific channel of that process. A process queue has
a companion hash ``<prefix>#c:<process prefix>`` counting entries per full channel name, which
is what per-socket capacity is checked against; it is deleted whenever its queue is found
empty, which undoes any drift left by a count update that never came. Statistics: hash
``<prefix>#s:<queue name>`` and the shard-wide ``<prefix>#s``. Groups: sorted set
``<prefix>#g:<group>``, score = time of the last ``group_add``, and hash ``<prefix>#p:<group>``
placing each member (its shard and capacity, so a group send needs no round trip to look them
up). ``#`` never occurs in channel or group names, so no key can collide.
"""

# Helpers included in every script that writes to queues.
_COMMON = r"""
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
"""

# Send to one or more channels (one send, or a group's members on one shard).
# KEYS: global stats hash, then per message: queue, counts hash ('' if none), stats hash.
# ARGV: now_ms, ttl, process_capacity, stats_ttl, then per message: channel, capacity, entry.
# Returns one flag per message: 1 queued, 0 full.
PUSH = _COMMON + r"""
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
"""

# Membership pruning shared by the group scripts: members whose last group_add is older than
# the cut-off go, from the sorted set and from the placement hash alike.
_PRUNE = r"""
local function prune(members_key, placement_key, cutoff)
  local lapsed = redis.call('ZRANGEBYSCORE', members_key, '-inf', cutoff)
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', members_key, '-inf', cutoff)
    for first = 1, #lapsed, 1000 do  -- unpack() has a stack limit: delete in slices
      redis.call('HDEL', placement_key, unpack(lapsed, first, math.min(first + 999, #lapsed)))
    end
  end
end
"""

# Live members of a group. KEYS: members sorted set, placement hash. ARGV: cut-off (seconds).
GROUP_MEMBERS = _PRUNE + r"""
prune(KEYS[1], KEYS[2], ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# Send to a group, run on the group's shard: members whose channel lives on this shard are
# pushed to here; the others are returned (with their capacity) for one push call per shard.
# The placement hash maps member -> "<shard index>:<capacity>", written by group_add.
# KEYS: members sorted set, placement hash, global stats hash.
# ARGV: now_ms, ttl, process_capacity, stats_ttl, key prefix, this shard's index, deadline
#       (14 digits), payload, membership cut-off (seconds), default capacity.
# Returns {number queued here, remote member, its capacity, remote member, its capacity, ...}.
GROUP_SEND = _COMMON + _PRUNE + r"""
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
"""

# Pop up to a limit of live entries from queues in the given order.
# KEYS: queues. ARGV: limit, now_ms, then per queue its counts hash ('' if none).
# Returns the entries (expired ones are dropped here, never delivered).
POP = _COMMON + r"""
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
"""

# Count entries of process queues as gone after a plain blocking pop took them.
# KEYS: per entry its counts hash, then its queue. ARGV: full channel name per entry.
UNCOUNT = _COMMON + r"""
for i, channel in ipairs(ARGV) do
  uncount(KEYS[2 * i - 1], channel)
  reset_if_empty(KEYS[2 * i], KEYS[2 * i - 1])
end
return #ARGV
"""

# One send: the hot path. The common case (a normal or ``?`` channel with room) runs first, as
# four plain commands and nothing else; only a process channel or a full queue goes on to the
# helpers above, whose definitions alone would cost as much as a command on every send.
# KEYS: queue, channel stats hash, global stats hash, counts hash (process channels only).
# ARGV: entry, capacity, ttl, stats_ttl, process_capacity, now_ms, channel.
# Returns 1 if queued, 0 if full.
SEND = r"""
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
""" + _COMMON + r"""
local counts = KEYS[4]
local ok = push(KEYS[1], counts, KEYS[2], ARGV[7], tonumber(ARGV[2]), ARGV[1],
                tonumber(ARGV[6]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[3], ok == 1 and 'messages_count' or 'channel_full_count', 1)
return ok
"""
