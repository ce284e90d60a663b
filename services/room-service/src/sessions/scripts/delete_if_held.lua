-- Deletes a session and its rooms only if the given node still holds it.
-- KEYS[1] session hash, KEYS[2] its rooms set; ARGV[1] node
-- Returns 1 if deleted, else 0.
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
