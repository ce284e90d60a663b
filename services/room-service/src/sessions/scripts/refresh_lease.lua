-- Extends a lease that has not expired yet.
-- KEYS[1] lease; ARGV[1] new time to live in ms
-- Returns 1 if extended, 0 if the lease was already gone.
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then
  return 1
end
return 0
