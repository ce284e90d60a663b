-- Adds a member unless the room is full, and publishes its peer_joined, atomically.
-- KEYS[1] members hash (peer id -> encoded Member), KEYS[2] room info hash,
-- KEYS[3] owners hash (peer id -> gateway node holding the member)
-- ARGV[1] peer id, ARGV[2] encoded Member, ARGV[3] capacity if the room is new,
-- ARGV[4] now in ms, ARGV[5] the room's channel, ARGV[6] encoded peer_joined envelope,
-- ARGV[7] the member's gateway node
-- Returns {status, capacity, created_at_ms, {peer id, member, ...}} where status is
-- 0: full, nothing changed; 1: joined; 2: already a member, nothing published.
-- PUBLISH is defined by the store when it loads the script: 'PUBLISH', or
-- 'SPUBLISH' in a Redis Cluster (the channel shares the keys' hash slot).
local members, info, owners = KEYS[1], KEYS[2], KEYS[3]
local count = redis.call('HLEN', members)
if count == 0 then
  redis.call('HSET', info, 'capacity', ARGV[3], 'created_at_ms', ARGV[4])
end
local capacity = tonumber(redis.call('HGET', info, 'capacity'))
local created = redis.call('HGET', info, 'created_at_ms')
if redis.call('HEXISTS', members, ARGV[1]) == 1 then
  return {2, capacity, created, redis.call('HGETALL', members)}
end
if count >= capacity then
  if count == 0 then
    redis.call('DEL', info)
  end
  return {0, capacity, created, {}}
end
redis.call('HSET', members, ARGV[1], ARGV[2])
redis.call('HSET', owners, ARGV[1], ARGV[7])
redis.call(PUBLISH, ARGV[5], ARGV[6])
return {1, capacity, created, redis.call('HGETALL', members)}
