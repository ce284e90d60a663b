-- Drops a node's index of sessions only if its lease is gone: a node that came back
-- (after being cut off) keeps the index of the sessions it holds now.
-- KEYS[1] lease, KEYS[2] index of its sessions
-- Returns 1 if dropped, 0 if the node holds a lease again.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[2])
return 1
