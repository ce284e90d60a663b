-- Removes a member and publishes its peer_left, atomically; deletes an emptied room.
-- KEYS[1] members hash, KEYS[2] room info hash, KEYS[3] owners hash
-- ARGV[1] peer id, ARGV[2] the room's channel, ARGV[3] encoded peer_left envelope,
-- ARGV[4] only if this gateway node holds the member ('' for any)
-- Returns 1 if the peer was removed, else 0 (and publishes nothing).
-- PUBLISH is defined by the store when it loads the script: 'PUBLISH', or
-- 'SPUBLISH' in a Redis Cluster (the channel shares the keys' hash slot).
if ARGV[4] ~= '' and redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[4] then
  return 0
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call(PUBLISH, ARGV[2], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
end
return 1
