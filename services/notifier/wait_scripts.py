"""The Lua scripts of the contact waits (services/notifier/waits.py), run by
``Writes`` in a handler's one transaction.

Layout: ``wait:<id>`` holds a waiting notification's draft (``notices.Draft``);
``client-waits:<client>`` and ``visit-waits:<visit>`` index them; ``waits`` is the
timer, by the clock epoch at which the wait ends. A wait is written only while
the client has no contact and no merge alias (else the handler decides again with
what is known now), and ends once: released with the contact, or, at its end,
with no contact. Saving a contact reads the waits in the same script, so a wait
written after it sees the contact, and one written before is read by it."""

from __future__ import annotations

from typing import Final

# KEYS: waits, then per draft its record, wait, client-waits, visit-waits (or the
# wait again), contact, alias. ARGV per draft: id, draft, wait end epoch, '1' when
# it joins the visit's set. Per draft: 1 waiting (now or already), the record when
# it was armed already, 0 when the client is known now.
WAIT: Final = """
local out = {}
for k = 2, #KEYS, 6 do
  local a = 1 + 4 * (k - 2) / 6
  local stored = redis.call('GET', KEYS[k])
  if stored then
    out[#out + 1] = stored
  elseif redis.call('EXISTS', KEYS[k + 1]) == 1 then
    out[#out + 1] = 1
  elseif redis.call('EXISTS', KEYS[k + 4]) == 1 or redis.call('EXISTS', KEYS[k + 5]) == 1 then
    out[#out + 1] = 0
  else
    redis.call('SET', KEYS[k + 1], ARGV[a + 1])
    redis.call('SADD', KEYS[k + 2], ARGV[a])
    if ARGV[a + 3] == '1' then redis.call('SADD', KEYS[k + 3], ARGV[a]) end
    redis.call('ZADD', KEYS[1], ARGV[a + 2], ARGV[a])
    out[#out + 1] = 1
  end
end
return out
"""

# KEYS: the client's waits. ARGV: the wait key prefix. The drafts waiting.
WAITING: Final = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local draft = redis.call('GET', ARGV[1] .. id)
  if draft then out[#out + 1] = draft end
end
return out
"""

# KEYS: waits, due, outbox entries, outbox queue, then per draft its wait,
# client-waits, visit-waits, record, client log. ARGV: outbox score, then per draft:
# id, record, due epoch or '', log score, event id, outbox entry. 1 for each
# released, 0 for each some other release or the end of its wait took first.
RELEASE: Final = """
local out = {}
for k = 5, #KEYS, 5 do
  local n = (k - 5) / 5
  local a = 2 + 6 * n
  local id = ARGV[a]
  if redis.call('DEL', KEYS[k]) == 1 then
    redis.call('SREM', KEYS[k + 1], id)
    redis.call('SREM', KEYS[k + 2], id)
    redis.call('ZREM', KEYS[1], id)
    if redis.call('SET', KEYS[k + 3], ARGV[a + 1], 'NX') then
      redis.call('ZADD', KEYS[k + 4], ARGV[a + 3], id)
      if ARGV[a + 2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[a + 2], id) end
      if redis.call('HSETNX', KEYS[3], ARGV[a + 4], ARGV[a + 5]) == 1 then
        redis.call('ZADD', KEYS[4], 'NX', tonumber(ARGV[1]) + n, ARGV[a + 4])
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# KEYS: waits, the visit's waits. ARGV: the wait key prefix, the client-waits key
# prefix. The visit's waits end unannounced (nothing was announced of them); how many.
DROP: Final = """
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  local draft = redis.call('GET', ARGV[1] .. id)
  if draft then
    redis.call('SREM', ARGV[2] .. cjson.decode(draft).client_id, id)
    redis.call('DEL', ARGV[1] .. id)
  end
  redis.call('ZREM', KEYS[1], id)
end
redis.call('DEL', KEYS[2])
return #ids
"""

# KEYS: the retired client's waits, the survivor's, the survivor's contact. ARGV:
# the wait key prefix, the survivor's id. The retired client's waits become the
# survivor's; the survivor's drafts waiting when the survivor has a contact.
MERGED: Final = """
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('GET', ARGV[1] .. id)
  if raw then
    local draft = cjson.decode(raw)
    draft.client_id = ARGV[2]
    redis.call('SET', ARGV[1] .. id, cjson.encode(draft))
    redis.call('SADD', KEYS[2], id)
  end
end
redis.call('DEL', KEYS[1])
local out = {}
if redis.call('EXISTS', KEYS[3]) == 1 then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local draft = redis.call('GET', ARGV[1] .. id)
    if draft then out[#out + 1] = draft end
  end
end
return out
"""

# KEYS: waits. ARGV: now epoch, how many. The drafts whose wait has ended.
ENDED: Final = """
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local draft = redis.call('GET', ARGV[3] .. id)
  if draft then out[#out + 1] = draft else redis.call('ZREM', KEYS[1], id) end
end
return out
"""
