-- Moves a member to another gateway node and publishes the session_moved marker,
-- atomically, if the expected node holds it.
-- KEYS[1] owners hash; ARGV[1] peer id, ARGV[2] from node, ARGV[3] to node,
-- ARGV[4] the room's channel, ARGV[5] encoded session_moved envelope
-- Returns 1 if moved (or already held by the new node: a retry), else 0.
-- PUBLISH is defined by the store when it loads the script: 'PUBLISH', or
-- 'SPUBLISH' in a Redis Cluster (the channel shares the keys' hash slot).
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner == ARGV[3] then
  return 1
end
if owner ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call(PUBLISH, ARGV[4], ARGV[5])
return 1
