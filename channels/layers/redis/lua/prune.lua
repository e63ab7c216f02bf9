-- Membership pruning of the group scripts: members whose last group_add is older than the
-- cut-off go, from the sorted set and from the placement hash alike.

local function prune(members_key, placement_key, cutoff)
  local lapsed = redis.call('ZRANGEBYSCORE', members_key, '-inf', cutoff)
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', members_key, '-inf', cutoff)
    for first = 1, #lapsed, 1000 do  -- unpack() has a stack limit: delete in slices
      redis.call('HDEL', placement_key, unpack(lapsed, first, math.min(first + 999, #lapsed)))
    end
  end
end
