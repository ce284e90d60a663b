-- Sets fields of a session only if the expected node still holds it.
-- KEYS[1] session hash; ARGV[1] expected node; ARGV[2..] field, value, field, value, ...
-- Returns 1 if set, 0 if the session is gone or held by another node.
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
