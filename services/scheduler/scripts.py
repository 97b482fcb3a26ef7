"""The scheduler's Lua scripts, and why each is one.

``APPLY`` is the calendar change (``store.CalendarChange``): the check-and-reserve
that rules out double booking, and the writes that go with it. It has to be one
script: Redis runs scripts one at a time, so no other instance's write can land
between checking an interval against what is held and holding it. Everything
else it does it does in as few commands as the data allows - the held intervals
near the new ones read with one HMGET, each kind of write one command for the
whole change (one HSET for the intervals, one MSET for the visits, one ZADD per
sorted set) - so the time the server is blocked grows with the visits of the
change, not with the commands per visit.

``TAKE`` is the one step of a plan event's first read that is not a plain read:
it answers what the event produced when it was handled before (a redelivery
stops there) and otherwise takes the location's lock, so that a replay never
holds the lock. The reads that go with it are plain commands in the same
pipeline (``plan_reads.py``): a script that returned the location's intervals
would cost the server several times what HMGET does for the same answer, and it
checks nothing the booking relies on - ``APPLY`` does.
"""

from __future__ import annotations

# KEYS: the event's record, the location's lock, the retired courses. ARGV: lock
# token, lease (ms), the plan id. Answers the record when the event was handled, an
# empty record when the plan's course is retired (no lock taken either way), else 1
# when the lock was taken, 0 when another holds it.
TAKE = """
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return '' end
local done = redis.call('GET', KEYS[1])
if done then return done end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

# KEYS: the lock to let go when holding it. ARGV: the holder's token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The change may name the directory version it was computed from (and, for a
# directory change, the new document and version), the turnover (s) of each
# location its holds are at, and per hold the therapist's daily maximum with the
# bounds (epoch s) of the hold's local day.
# ARGV: key prefix, longest visit (s), the real clock (epoch ms, which orders the
# outbox), the change (JSON), and the
# location's lock and its holder's token ('' when the caller holds it elsewhere),
# let go whatever the outcome. Answers {'ok'}, {'overlap', id, other},
# {'full', id, therapist} or {'stale', id, why}; nothing is written unless it is {'ok'}.
APPLY = """
local p = ARGV[1]
local span = tonumber(ARGV[2])
local queued_at = tonumber(ARGV[3])
local change = cjson.decode(ARGV[4])
local lock, token = ARGV[5], ARGV[6]
local function k(...) return p .. ':' .. table.concat({...}, ':') end
local function finish(answer)
  if lock ~= '' and redis.call('GET', lock) == token then redis.call('DEL', lock) end
  return answer
end
local function busy(h)
  return {k('busy', 'therapist', h.therapist_id),
          k('busy', 'room', h.location_id, tostring(h.room)),
          k('busy', 'client', h.client_id)}
end
-- run command(head..., items...) in slices: Lua's unpack has a stack limit
local function sliced(command, head, items)
  for i = 1, #items, 1000 do
    local args = {unpack(head)}
    for j = i, math.min(i + 999, #items) do args[#args + 1] = items[j] end
    redis.call(command, unpack(args))
  end
end
local function hmget(key, ids)
  local found = {}
  for i = 1, #ids, 1000 do
    local slice = {unpack(ids, i, math.min(i + 999, #ids))}
    local raw = redis.call('HMGET', key, unpack(slice))
    for j, id in ipairs(slice) do found[id] = raw[j] end
  end
  return found
end
-- exclusive score bounds, exact (Lua's own number formatting keeps 14 digits)
local function exclusive(x) return string.format('(%.17g', x) end
local function listed(map)
  local out = {}
  for key, _ in pairs(map) do out[#out + 1] = key end
  return out
end
local function append(list, ...) for _, v in ipairs({...}) do list[#list + 1] = v end end
local function push(map, key, ...)
  map[key] = map[key] or {}
  append(map[key], ...)
end

-- the directory it was computed from is the current one; a directory change writes
-- the new document and version with the calendar changes it re-planned
if change.directory then
  local current = tonumber(redis.call('GET', k('directory-version')) or '0')
  if current ~= change.directory[1] then
    return finish({'stale', 'directory', tostring(current)})
  end
  if change.directory[2] then
    redis.call('SET', k('directory'), change.directory[2])
    redis.call('SET', k('directory-version'), change.directory[3])
  end
end

-- what the change was computed from has not moved since
local expected = listed(change.expect)
if #expected > 0 then
  local statuses, intervals = hmget(k('visit-status'), expected), hmget(k('held'), expected)
  for _, id in ipairs(expected) do
    local was, status = change.expect[id], statuses[id] or 'booked'
    if status ~= was[1] then return finish({'stale', id, status}) end
    local raw = intervals[id]
    if (status == 'booked' or status == 'offered')
        and (not raw or math.abs(cjson.decode(raw).start - was[2]) > 0.001) then
      return finish({'stale', id, 'moved'})
    end
  end
end

-- check: no new interval overlaps a held one (other than those this change moves or
-- frees): candidates are held visits of the same therapist, room or client starting
-- less than the longest visit before the new one, and before it ends
local moving = {}
for id, _ in pairs(change.free) do moving[id] = true end
for _, h in ipairs(change.hold) do moving[h.visit_id] = true end
local near, wanted = {}, {}
-- the turnover after each visit keeps its therapist and room free a while longer
local function pad(h) return tonumber(change.turnover[h.location_id] or 0) end
local function consider(i, other, gap)
  if not moving[other] then
    near[i][#near[i] + 1] = {other, gap}
    wanted[other] = true
  end
end
-- a client holds few visits: each client's are read once, over the whole change
local spans, of_client = {}, {}
for _, h in ipairs(change.hold) do
  local set = busy(h)[3]
  local s = spans[set]
  if s then
    s[1], s[2] = math.min(s[1], h.start - span), math.max(s[2], h['end'])
  else
    spans[set] = {h.start - span, h['end']}
  end
end
for set, s in pairs(spans) do
  local lo, hi = exclusive(s[1]), exclusive(s[2])
  local found = redis.call('ZRANGEBYSCORE', set, lo, hi, 'WITHSCORES')
  of_client[set] = {}
  for j = 1, #found, 2 do
    of_client[set][#of_client[set] + 1] = {found[j], tonumber(found[j + 1])}
  end
end
for i, h in ipairs(change.hold) do
  near[i] = {}
  local sets, gap = busy(h), pad(h)
  for n = 1, 2 do  -- the therapist's and the room's, around this visit only
    local lo, hi = exclusive(h.start - span - gap), exclusive(h['end'] + gap)
    local found = redis.call('ZRANGEBYSCORE', sets[n], lo, hi)
    for _, other in ipairs(found) do consider(i, other, gap) end
  end
  for _, member in ipairs(of_client[sets[3]]) do
    if member[2] > h.start - span and member[2] < h['end'] then consider(i, member[1], 0) end
  end
end
for id, _ in pairs(moving) do wanted[id] = true end
local held = {}
for id, raw in pairs(hmget(k('held'), listed(wanted))) do
  if raw then held[id] = cjson.decode(raw) end
end
for i, h in ipairs(change.hold) do
  for _, found in ipairs(near[i]) do
    local other, gap = found[1], found[2]
    local o = held[other]
    if o and o['end'] + gap > h.start and o.start < h['end'] + gap then
      return finish({'overlap', h.visit_id, other})
    end
  end
  for j = 1, i - 1 do
    local o, gap = change.hold[j], pad(h)
    local apart = o.start < h['end'] + gap and h.start < o['end'] + gap
    if (o.start < h['end'] and h.start < o['end'] and o.client_id == h.client_id)
        or (apart and (o.therapist_id == h.therapist_id
          or (o.location_id == h.location_id and o.room == h.room))) then
      return finish({'overlap', h.visit_id, o.visit_id})
    end
  end
end

-- the therapist's daily maximum: their visits held that local day (a therapist works
-- at one location a day), less those this change moves or frees, plus its own holds
-- before this one that day
for i, h in ipairs(change.hold) do
  local cap = change.daycap[h.visit_id]
  if cap then
    local lo, hi = cap[2], cap[3]
    local count = redis.call('ZCOUNT', k('busy', 'therapist', h.therapist_id), lo, exclusive(hi))
    for id, _ in pairs(moving) do
      local o = held[id]
      if o and o.therapist_id == h.therapist_id and o.start >= lo and o.start < hi then
        count = count - 1
      end
    end
    local counted = {}
    for j = 1, i - 1 do
      local o = change.hold[j]
      if o.therapist_id == h.therapist_id and o.start >= lo and o.start < hi
          and o.visit_id ~= h.visit_id and not counted[o.visit_id] then
        counted[o.visit_id] = true
        count = count + 1
      end
    end
    if count >= cap[1] then return finish({'full', h.visit_id, h.therapist_id}) end
  end
end

-- write: what moves or is freed leaves its place first, then every hold takes its
-- own (the last hold of an id wins, as when applied one after another)
local removed, added, unheld = {}, {}, {}
for id, _ in pairs(moving) do
  local o = held[id]
  if o then
    for _, set in ipairs(busy(o)) do push(removed, set, id) end
    push(removed, k('location-visits', o.location_id), id)
    unheld[#unheld + 1] = id
    -- a cancelled visit stays on its location's day, marked cancelled
    if change.free[id] == 'cancelled' then
      push(added, k('location-cancelled', o.location_id), o.start, id)
    end
  end
end
local placed, order = {}, {}
for _, h in ipairs(change.hold) do
  if not placed[h.visit_id] then order[#order + 1] = h.visit_id end
  placed[h.visit_id] = h
end
local statuses = {}  -- later kinds win: freed, then held (booked), then status
for id, status in pairs(change.free) do statuses[id] = status end
local intervals, visits = {}, {}
for _, id in ipairs(order) do
  local h = placed[id]
  visits[#visits + 1] = k('visit', id)
  visits[#visits + 1] = h.json
  h.json = nil  -- the visit itself lives at visit:<id>; held keeps only its interval
  intervals[#intervals + 1] = id
  intervals[#intervals + 1] = cjson.encode(h)
  for _, set in ipairs(busy(h)) do push(added, set, h.start, id) end
  push(added, k('location-visits', h.location_id), h.start, id)
  push(added, k('client-visits', h.client_id), h.start, id)
  statuses[id] = 'booked'
end
for id, status in pairs(change.status) do statuses[id] = status end
for set, ids in pairs(removed) do sliced('ZREM', {set}, ids) end
sliced('HDEL', {k('held')}, unheld)
sliced('HSET', {k('held')}, intervals)
for set, members in pairs(added) do sliced('ZADD', {set}, members) end
sliced('MSET', {}, visits)
local status_pairs = {}
for id, status in pairs(statuses) do append(status_pairs, id, status) end
sliced('HSET', {k('visit-status')}, status_pairs)
local records = {}
for key, value in pairs(change.records) do append(records, k('record', key), value) end
sliced('MSET', {}, records)
local unsettled = {}
for _, member in ipairs(change.settle) do append(unsettled, queued_at / 1000, member) end
sliced('ZADD', {k('unsettled')}, unsettled)
-- a course's end, as shared.retention's note_ended writes it: the first one holds
for plan, at in pairs(change.ended) do redis.call('ZADD', k('ended'), 'NX', at, plan) end
local waiting, leaving = {}, {}
for _, w in ipairs(change.waiting) do
  if w[3] then push(waiting, k('waiting', w[1]), w[2], w[3])
  else push(leaving, k('waiting', w[1]), w[2]) end
end
for key, entries in pairs(waiting) do sliced('HSET', {key}, entries) end
for key, plans in pairs(leaving) do sliced('HDEL', {key}, plans) end
local due, done = {}, {}
for id, at in pairs(change.due) do
  if at then append(due, at, id) else append(done, id) end
end
sliced('ZADD', {k('offers-due')}, due)
sliced('ZREM', {k('offers-due')}, done)
-- the outbox as shared/outbox.py stages: by the real clock in ms, in the change's
-- order, NX (a retry of the same event keeps its first place in the queue)
local entries, queued = {}, {}
for offset, item in ipairs(change.outbox) do
  append(entries, item[1], item[2])
  append(queued, queued_at + offset - 1, item[1])
end
sliced('HSET', {k('outbox')}, entries)
sliced('ZADD', {k('outbox-due'), 'NX'}, queued)
return finish({'ok'})
"""
