-- Count entries of process queues as gone after a plain blocking pop took them.
-- KEYS: per entry its counts hash, then its queue. ARGV: full channel name per entry.
-- Returns the number of entries counted.

-- include: common.lua

for i, channel in ipairs(ARGV) do
  uncount(KEYS[2 * i - 1], channel)
  reset_if_empty(KEYS[2 * i], KEYS[2 * i - 1])
end
return #ARGV
