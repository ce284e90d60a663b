-- A room's members and the gateway node holding each, in one step.
-- KEYS[1] members hash, KEYS[2] owners hash
-- Returns {{peer id, member, ...}, {peer id, node, ...}}.
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
