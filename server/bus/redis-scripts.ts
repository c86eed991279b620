/**
 * Lua scripts for the presence registry. Each runs atomically in Redis and
 * reads Redis's own clock, so instances never compare their clocks. Key names
 * that depend on values read inside a script are built from the prefix (a
 * standalone Redis; a Redis Cluster would need hash tags).
 */
import { createHash } from "node:crypto";

export interface Script {
  src: string;
  sha: string;
}

const NOW = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function alive(instances, id, dead)
  local seen = redis.call('ZSCORE', instances, id)
  return seen and tonumber(seen) >= now() - dead
end
`;

const script = (body: string): Script => {
  const src = `${NOW}\n${body}`;
  return { src, sha: createHash("sha1").update(src).digest("hex") };
};

/**
 * KEYS: user key, instances. ARGV: me, deadMs, userId, prefix, reclaim (1/0).
 * 2: claimed. 3: claimed from a dead instance that had not been reaped.
 * 0: online on a live instance (or, unless reclaiming, already here).
 */
export const CLAIM = script(`
local cur = redis.call('GET', KEYS[1])
local result = 2
if cur then
  if cur == ARGV[1] then return tonumber(ARGV[5]) end
  if alive(KEYS[2], cur, tonumber(ARGV[2])) then return 0 end
  redis.call('SREM', ARGV[4] .. ':members:' .. cur, ARGV[3])
  result = 3
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', ARGV[4] .. ':members:' .. ARGV[1], ARGV[3])
return result
`);

/** KEYS: user key, my members set. ARGV: me, userId. */
export const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`);

/** KEYS: user keys..., instances. ARGV: deadMs. Returns the live instance per user, or "". */
export const LOCATE = script(`
local z = KEYS[#KEYS]
local dead = tonumber(ARGV[1])
local known = {}
local out = {}
for i = 1, #KEYS - 1 do
  local cur = redis.call('GET', KEYS[i])
  local where = ''
  if cur then
    if known[cur] == nil then known[cur] = alive(z, cur, dead) and true or false end
    if known[cur] then where = cur end
  end
  out[i] = where
end
return out
`);

/**
 * KEYS: instances, node key. ARGV: me, node lease ms.
 * Records this instance as alive. Returns lease * 2 + forgotten: lease is 1
 * unless the node lease was lost to another instance; forgotten is 1 when the
 * registry did not know this instance (Redis restarted empty, or the
 * instance was taken for dead), so its claims must be asserted again.
 */
export const HEARTBEAT = script(`
local forgotten = redis.call('ZADD', KEYS[1], now(), ARGV[1])
local owner = redis.call('GET', KEYS[2])
local lease = 0
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  lease = 1
elseif not owner then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  lease = 1
end
return lease * 2 + forgotten
`);

/**
 * KEYS: instances. ARGV: deadMs, prefix. Forgets instances whose heartbeat
 * stopped and returns their users, each to exactly one caller.
 */
export const REAP = script(`
local limit = now() - tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. limit)
local released = {}
for _, inst in ipairs(dead) do
  local mkey = ARGV[2] .. ':members:' .. inst
  for _, uid in ipairs(redis.call('SMEMBERS', mkey)) do
    local ukey = ARGV[2] .. ':user:' .. uid
    if redis.call('GET', ukey) == inst then
      redis.call('DEL', ukey)
      table.insert(released, uid)
    end
  end
  redis.call('DEL', mkey)
  redis.call('ZREM', KEYS[1], inst)
end
return released
`);
