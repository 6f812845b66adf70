package redis

import goredis "github.com/redis/go-redis/v9"

// Lua scripts. Each runs atomically on the Redis server, so offsets, history
// and pub/sub delivery order agree across every node. The keys of one
// channel share a hash tag ({channel}); the presence sweeper derives keys
// from the prefix, so the broker targets a standalone Redis (or a proxy
// routing scripts to one server), not Redis Cluster.
//
// Key layout (P = Options.Prefix, ch = channel name):
//
//	P{ch}:meta    hash: e = epoch, o = newest offset, t = history TTL (ms)
//	P{ch}:hist    stream: ID "<offset>-0", fields t (ms), p (publisher), d (data)
//	P{ch}:pres    hash: connID → "<len(memberID)>:<memberID><member JSON>"
//	P{ch}:pcount  hash: memberID → live connections
//	P{ch}:pidx    sorted set, all scores 0: idx_key(memberID, connID) of every
//	              P{ch}:pres entry, so pages by member ID are read with ZRANGEBYLEX
//	Pleases       sorted set: "<len(ch)>:<ch><connID>" → lease expiry (ms)
//	Pc:ch         pub/sub channel of messages and presence events

// common is prepended to the scripts that need it.
const common = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- ensure returns the channel's epoch and offset, creating a new epoch
-- (and dropping any orphaned history) when the meta key is gone.
local function ensure(meta, hist, new_epoch, meta_ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'e', new_epoch, 'o', 0, 't', 0)
    redis.call('PEXPIRE', meta, meta_ttl)
    return new_epoch, 0
  end
  return epoch, tonumber(redis.call('HGET', meta, 'o'))
end

local function id_offset(id)
  return tonumber(string.match(id, '^(%d+)'))
end

-- trim drops the stream entries published before cutoff (ms). The common
-- case (nothing expired) reads one entry.
local function trim(hist, cutoff)
  local count = 1
  while true do
    local es = redis.call('XRANGE', hist, '-', '+', 'COUNT', count)
    if #es == 0 then return end
    for i, e in ipairs(es) do
      if tonumber(e[2][2]) >= cutoff then
        if i > 1 then
          redis.call('XTRIM', hist, 'MINID', e[1])
        end
        return
      end
    end
    redis.call('XTRIM', hist, 'MINID', id_offset(es[#es][1]) + 1)
    count = 64
  end
end

local function split_member(v)
  local c = string.find(v, ':', 1, true)
  local n = tonumber(string.sub(v, 1, c - 1))
  return string.sub(v, c + 1, c + n), string.sub(v, c + n + 1)
end

-- idx_key is the P{ch}:pidx entry of a connection: the member ID with
-- every NUL byte escaped as NUL 0xFF, the terminator NUL 0x01, then the
-- connection ID. Byte-wise order of the keys is the order by member ID,
-- then connection ID (presenceStart in presence.go builds the same keys).
local function idx_key(id, conn)
  return (string.gsub(id, '%z', '\0\255')) .. '\0\1' .. conn
end

-- remove_conn deletes one presence connection and publishes a leave when
-- it was its member's last. Returns 1 if the connection existed.
local function remove_conn(pres, pcount, pidx, conn, pubsub)
  local v = redis.call('HGET', pres, conn)
  if not v then return 0 end
  redis.call('HDEL', pres, conn)
  local id, json = split_member(v)
  redis.call('ZREM', pidx, idx_key(id, conn))
  local n = redis.call('HINCRBY', pcount, id, -1)
  if n <= 0 then
    redis.call('HDEL', pcount, id)
    redis.call('PUBLISH', pubsub, 'l' .. json)
  end
  return 1
end
`

// publishScript: KEYS meta, hist; ARGV new epoch, meta TTL ms, size, TTL ms,
// publisher, data, pub/sub channel. Returns {epoch, offset, time ms}.
var publishScript = goredis.NewScript(common + `
local meta, hist = KEYS[1], KEYS[2]
local meta_ttl, size, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local epoch = ensure(meta, hist, ARGV[1], meta_ttl)
local off = redis.call('HINCRBY', meta, 'o', 1)
redis.call('HSET', meta, 't', ttl)
if size > 0 then
  redis.call('XADD', hist, 'MAXLEN', size, off .. '-0', 't', now, 'p', ARGV[5], 'd', ARGV[6])
  if ttl > 0 then
    trim(hist, now - ttl)
    redis.call('PEXPIRE', hist, ttl)
  else
    redis.call('PEXPIRE', hist, meta_ttl)
  end
else
  redis.call('DEL', hist)
end
redis.call('PEXPIRE', meta, math.max(meta_ttl, ttl))
redis.call('PUBLISH', ARGV[7], 'm' .. epoch .. ':' .. off .. ':' .. now .. ':' .. string.len(ARGV[5]) .. ':' .. ARGV[5] .. ARGV[6])
return {epoch, off, now}
`)

// readScript: KEYS meta, hist; ARGV new epoch, meta TTL ms, since offset,
// limit (0: all), with entries (1/0). Returns {epoch, offset, oldest
// retained offset (0: none), entries}.
var readScript = goredis.NewScript(common + `
local meta, hist = KEYS[1], KEYS[2]
local epoch, top = ensure(meta, hist, ARGV[1], tonumber(ARGV[2]))
if ARGV[5] ~= '1' then
  return {epoch, top, 0, {}}
end
local ttl = tonumber(redis.call('HGET', meta, 't') or '0')
if ttl > 0 then
  trim(hist, now_ms() - ttl)
end
local oldest = 0
local first = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)
if #first > 0 then
  oldest = id_offset(first[1][1])
end
local start = (tonumber(ARGV[3]) + 1) .. '-0'
local limit = tonumber(ARGV[4])
local entries
if limit > 0 then
  entries = redis.call('XRANGE', hist, start, '+', 'COUNT', limit)
else
  entries = redis.call('XRANGE', hist, start, '+')
end
return {epoch, top, oldest, entries}
`)

// joinScript: KEYS pres, pcount, leases, pidx; ARGV connID, memberID, stored
// value, lease TTL ms (0: none), lease item, pub/sub channel, member JSON,
// key grace ms. Returns 1 when it published a join.
var joinScript = goredis.NewScript(common + `
local pres, pcount, leases, pidx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local conn, id, value, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local score = '+inf'
if ttl > 0 then
  score = now_ms() + ttl
end
local old = redis.call('HGET', pres, conn)
if old then
  local old_id = split_member(old)
  if old_id == id then
    redis.call('HSET', pres, conn, value)
    redis.call('ZADD', leases, score, ARGV[5])
    old = 'renewed'
  else
    remove_conn(pres, pcount, pidx, conn, ARGV[6])
    old = nil
  end
end
local joined = 0
if not old then
  redis.call('HSET', pres, conn, value)
  redis.call('ZADD', leases, score, ARGV[5])
  redis.call('ZADD', pidx, 0, idx_key(id, conn))
  if redis.call('HINCRBY', pcount, id, 1) == 1 then
    redis.call('PUBLISH', ARGV[6], 'j' .. ARGV[7])
    joined = 1
  end
end
for _, k in ipairs({pres, pcount, pidx}) do
  if ttl == 0 then
    redis.call('PERSIST', k)
  else
    local cur = redis.call('PTTL', k)
    local want = ttl + tonumber(ARGV[8])
    if cur ~= -1 and cur < want then
      redis.call('PEXPIRE', k, want)
    end
  end
end
return joined
`)

// leaveScript: KEYS pres, pcount, leases, pidx; ARGV connID, lease item,
// pub/sub channel. Returns 1 if the connection existed.
var leaveScript = goredis.NewScript(common + `
redis.call('ZREM', KEYS[3], ARGV[2])
return remove_conn(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[3])
`)

// presenceScript: KEYS pres, leases; ARGV lease item prefix "<len>:<ch>".
// Returns the stored values of the unexpired connections.
var presenceScript = goredis.NewScript(common + `
local now = now_ms()
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local s = redis.call('ZSCORE', KEYS[2], ARGV[1] .. all[i])
  if s and (s == 'inf' or tonumber(s) > now) then
    out[#out + 1] = all[i + 1]
  end
end
return out
`)

// presencePageScript: KEYS pres, pidx, leases; ARGV ZRANGEBYLEX start
// ("-" or "[" .. the first key after a member), limit (members), lease
// item prefix "<len>:<ch>". Returns {more (1/0), stored values of the
// unexpired connections of at most limit members, in index order}. An
// index that does not match the hash (written by a version without it)
// is rebuilt first; entries whose connection is gone are dropped.
var presencePageScript = goredis.NewScript(common + `
local pres, pidx, leases = KEYS[1], KEYS[2], KEYS[3]
local limit = tonumber(ARGV[2])
if redis.call('ZCARD', pidx) ~= redis.call('HLEN', pres) then
  redis.call('DEL', pidx)
  local all = redis.call('HGETALL', pres)
  for i = 1, #all, 2 do
    redis.call('ZADD', pidx, 0, idx_key(split_member(all[i + 1]), all[i]))
  end
  local ttl = redis.call('PTTL', pres)
  if ttl > 0 then redis.call('PEXPIRE', pidx, ttl) end
end
local now = now_ms()
local out, members, last = {}, 0, nil
local start = ARGV[1]
while true do
  local keys = redis.call('ZRANGEBYLEX', pidx, start, '+', 'LIMIT', 0, 256)
  if #keys == 0 then return {0, out} end
  for _, k in ipairs(keys) do
    local c = string.find(k, '\0\1', 1, true)
    local conn = string.sub(k, c + 2)
    local v = redis.call('HGET', pres, conn)
    local id = v and split_member(v)
    if not v or idx_key(id, conn) ~= k then
      redis.call('ZREM', pidx, k)
    else
      local s = redis.call('ZSCORE', leases, ARGV[3] .. conn)
      if s and (s == 'inf' or tonumber(s) > now) then
        if id ~= last then
          if members == limit then return {1, out} end
          members, last = members + 1, id
        end
        out[#out + 1] = v
      end
    end
  end
  start = '(' .. keys[#keys]
end
`)

// sweepScript: KEYS leases; ARGV prefix, batch size. Removes up to batch
// expired leases, publishing leaves. Returns how many it examined.
var sweepScript = goredis.NewScript(common + `
local prefix = ARGV[1]
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, item in ipairs(items) do
  redis.call('ZREM', KEYS[1], item)
  local c = string.find(item, ':', 1, true)
  local n = tonumber(string.sub(item, 1, c - 1))
  local ch = string.sub(item, c + 1, c + n)
  local conn = string.sub(item, c + n + 1)
  local base = prefix .. '{' .. ch .. '}:'
  remove_conn(base .. 'pres', base .. 'pcount', base .. 'pidx', conn, prefix .. 'c:' .. ch)
end
return #items
`)
