namespace OpencodeGateway.History.Internal;

/// <summary>
/// The Lua scripts of the Redis history. A session's state is a hash (<c>~e</c> epoch, <c>~q</c> seq, <c>~x</c> the stream
/// it is continuous with, <c>~b</c> history bytes, <c>~r</c> last text-TTL refresh, and the live-state entries of
/// <c>LiveStateEntries</c>), its texts are strings (appended to), its recent events a stream with ids
/// <c>{epoch}-{seq}</c>. Each script runs atomically, so readers always see state and history at one position.
/// Epochs and numbers cross Lua as strings formatted with <c>%.0f</c>: they stay below 2^53, where Lua's doubles are exact.
/// </summary>
internal static class RedisHistoryScripts
{
    // Hands out an epoch: at least Redis's clock in µs, above the last one handed out and above the session's previous.
    private const string NewEpochLua = """
        local now = redis.call('TIME')
        local epoch = tonumber(now[1]) * 1000000 + tonumber(now[2])
        local last = tonumber(redis.call('GET', KEYS_EPOCH) or '0')
        if epoch <= last then epoch = last + 1 end
        if epoch <= PREVIOUS then epoch = PREVIOUS + 1 end
        redis.call('SET', KEYS_EPOCH, string.format('%.0f', epoch))
        """;

    /// <summary>KEYS: last-epoch counter. ARGV: previous epoch. Returns the new epoch.</summary>
    public const string NewEpoch = "local KEYS_EPOCH = KEYS[1]\nlocal PREVIOUS = tonumber(ARGV[1])\n" + NewEpochLua
        + "\nreturn string.format('%.0f', epoch)";

    /// <summary>
    /// Creates a session's state when it has none (a join before any event): a new epoch at seq 0, continuous with the
    /// upstream's current stream. KEYS: state, last-epoch counter, stream key, active set. ARGV: ttl ms, session id.
    /// Returns {epoch, seq}.
    /// </summary>
    public const string Ensure = """
        local e = redis.call('HGET', KEYS[1], '~e')
        if e then return {e, redis.call('HGET', KEYS[1], '~q')} end
        local KEYS_EPOCH = KEYS[2]
        local PREVIOUS = 0
        """ + "\n" + NewEpochLua + "\n" + """
        local text = string.format('%.0f', epoch)
        redis.call('HSET', KEYS[1], '~e', text, '~q', '0', '~x', redis.call('GET', KEYS[3]) or '', '~b', '0')
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        local t = redis.call('TIME')
        redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000, ARGV[2])
        return {text, '0'}
        """;

    /// <summary>
    /// Appends a batch of one session: its events and the live-state changes they made, and publishes the events.
    /// KEYS: state, history, lease, active set.
    /// ARGV: 1 lease value ('' = no fencing), 2 epoch, 3 previous seq, 4 new seq, 5 stream id, 6 full (1: the changes
    /// replace the whole state), 7 channel, 8 text key prefix, 9 max events, 10 max bytes, 11 ttl ms, 12 session id,
    /// 13-17 counts of sets, deletes, text sets, text appends, events; then the items: (field, value)…, field…,
    /// (text, value)…, (text, value)…, (seq, json, size)….
    /// Returns OK; DUP when already applied (a retry); RESYNC when the store does not hold the state the batch follows
    /// (it lost data, or this batch came after a gap): the holder writes the session whole; FENCED when another node
    /// holds the lease; NEWER when the store holds a newer epoch of the session (the writer moves the session above
    /// it: epochs never go back); NOLEASE when nobody does (Redis lost it, or it expired): the writer tries again until it is
    /// held, by the writer again or by another node.
    /// </summary>
    public const string Append = """
        if ARGV[1] ~= '' then
          local lease = redis.call('GET', KEYS[3])
          if not lease then return 'NOLEASE' end
          if lease ~= ARGV[1] then return 'FENCED' end
        end
        local epoch = ARGV[2]
        local state = redis.call('HMGET', KEYS[1], '~e', '~q', '~b', '~r')
        local e = state[1]
        local q = tonumber(state[2] or '-1')
        local bytes = tonumber(state[3] or '0')
        local refreshed = tonumber(state[4] or '0')
        if e and tonumber(e) > tonumber(epoch) then return 'NEWER' end
        if ARGV[6] == '0' then
          if e ~= epoch or q ~= tonumber(ARGV[3]) then
            if e == epoch and q >= tonumber(ARGV[4]) then return 'DUP' end
            return 'RESYNC'
          end
        else
          if e == epoch and q > tonumber(ARGV[4]) then return 'DUP' end
          for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
            if string.sub(f, 1, 2) == 'f:' then redis.call('DEL', ARGV[8] .. string.sub(f, 3)) end
          end
          redis.call('DEL', KEYS[1])
          if e ~= epoch then
            redis.call('DEL', KEYS[2])
            bytes = 0
          end
          refreshed = 0
        end
        local ttl = tonumber(ARGV[11])
        local textTtl = math.floor(ttl * 3 / 2)
        local i = 18
        for n = 1, tonumber(ARGV[13]) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
        for n = 1, tonumber(ARGV[14]) do redis.call('HDEL', KEYS[1], ARGV[i]); i = i + 1 end
        for n = 1, tonumber(ARGV[15]) do redis.call('SET', ARGV[8] .. ARGV[i], ARGV[i + 1], 'PX', textTtl); i = i + 2 end
        for n = 1, tonumber(ARGV[16]) do
          local key = ARGV[8] .. ARGV[i]
          redis.call('APPEND', key, ARGV[i + 1])
          redis.call('PEXPIRE', key, textTtl)
          i = i + 2
        end
        for n = 1, tonumber(ARGV[17]) do
          redis.call('XADD', KEYS[2], epoch .. '-' .. ARGV[i], 'e', ARGV[i + 1], 'n', ARGV[i + 2])
          redis.call('PUBLISH', ARGV[7], ARGV[i + 1])
          bytes = bytes + tonumber(ARGV[i + 2])
          i = i + 3
        end
        local count = redis.call('XLEN', KEYS[2])
        while count > 1 and (count > tonumber(ARGV[9]) or bytes > tonumber(ARGV[10])) do
          local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
          redis.call('XDEL', KEYS[2], first[1])
          bytes = bytes - tonumber(first[2][4])
          count = count - 1
        end
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('HSET', KEYS[1], '~e', epoch, '~q', ARGV[4], '~x', ARGV[5], '~b', string.format('%.0f', bytes))
        -- Texts outlive the state a little, so a reader never finds a field without its text; refreshed as a whole
        -- every quarter TTL (each write refreshes what it touches).
        if ms - refreshed > ttl / 4 then
          for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
            if string.sub(f, 1, 2) == 'f:' then redis.call('PEXPIRE', ARGV[8] .. string.sub(f, 3), textTtl) end
          end
          redis.call('HSET', KEYS[1], '~r', string.format('%.0f', ms))
        end
        redis.call('PEXPIRE', KEYS[1], ttl)
        redis.call('PEXPIRE', KEYS[2], ttl)
        redis.call('ZADD', KEYS[4], ms, ARGV[12])
        return 'OK'
        """;

    /// <summary>
    /// A session's state with its texts, or nil. KEYS: state. ARGV: text key prefix. Returns {fields-and-values, texts}
    /// where texts alternate name and value.
    /// </summary>
    public const string ReadState = """
        local all = redis.call('HGETALL', KEYS[1])
        if #all == 0 then return false end
        local texts = {}
        for n = 1, #all, 2 do
          local f = all[n]
          if string.sub(f, 1, 2) == 'f:' then
            local name = string.sub(f, 3)
            table.insert(texts, name)
            table.insert(texts, redis.call('GET', ARGV[1] .. name) or '')
          end
        end
        return {all, texts}
        """;

    /// <summary>
    /// The events after a position, when the history holds all of them; nil otherwise. KEYS: state, history.
    /// ARGV: epoch, seq.
    /// </summary>
    public const string ReadAfter = """
        if redis.call('HGET', KEYS[1], '~e') ~= ARGV[1] then return false end
        local q = tonumber(redis.call('HGET', KEYS[1], '~q'))
        local since = tonumber(ARGV[2])
        if since > q or since < 0 then return false end
        if since == q then return {} end
        local entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-' .. string.format('%.0f', since + 1),
          ARGV[1] .. '-' .. string.format('%.0f', q))
        if #entries ~= q - since then return false end
        local out = {}
        for _, entry in ipairs(entries) do table.insert(out, entry[2][2]) end
        return out
        """;
}
