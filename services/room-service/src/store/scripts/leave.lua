-- Removes a member and publishes its peer_left, atomically; deletes an emptied room.
-- KEYS[1] members hash, KEYS[2] room info hash
-- ARGV[1] peer id, ARGV[2] the room's channel, ARGV[3] encoded peer_left envelope
-- Returns 1 if the peer was a member, else 0 (and publishes nothing).
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
end
return 1
