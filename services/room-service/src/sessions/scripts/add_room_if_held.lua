-- Notes a room of a session only if the given node still holds the session, so that a
-- join racing the session's end leaves no room entry behind.
-- KEYS[1] session hash, KEYS[2] its rooms set; ARGV[1] node, ARGV[2] room
-- Returns 1 if added (or already there), else 0.
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
