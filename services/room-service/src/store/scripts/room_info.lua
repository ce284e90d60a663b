-- Reads a room's info and member count in one step.
-- KEYS[1] members hash, KEYS[2] room info hash
-- Returns {capacity, created_at_ms, member count}, or an empty array if there is no room.
local capacity = redis.call('HGET', KEYS[2], 'capacity')
if not capacity then
  return {}
end
return {tonumber(capacity), redis.call('HGET', KEYS[2], 'created_at_ms'), redis.call('HLEN', KEYS[1])}
