-- Live members of a group (lapsed ones are pruned on the way).
-- KEYS: members sorted set, placement hash. ARGV: cut-off (seconds).

-- include: prune.lua

prune(KEYS[1], KEYS[2], ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
