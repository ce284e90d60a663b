-- Publishes on a room's channel only if the room exists.
-- KEYS[1] room info hash; ARGV[1] the room's channel, ARGV[2] encoded envelope
-- Returns 1 if published, 0 if there is no such room.
-- PUBLISH is defined by the store when it loads the script: 'PUBLISH', or
-- 'SPUBLISH' in a Redis Cluster (the channel shares the keys' hash slot).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call(PUBLISH, ARGV[1], ARGV[2])
return 1
