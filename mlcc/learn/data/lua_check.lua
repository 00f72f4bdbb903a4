-- Exercises a freshly built Lua 5.4 interpreter: arithmetic, strings, tables,
-- closures, metatables, coroutines, errors, goto, the garbage collector and a
-- few computations with checksums cross-checked outside Lua (Python).
-- Prints "OK <n> checks" on success; exits nonzero on the first failed check.

local checks = 0
local function check(cond, what)
  checks = checks + 1
  assert(cond, ("check %d failed: %s"):format(checks, what))
end

local function fails(f, pattern)
  local ok, err = pcall(f)
  return not ok and tostring(err):find(pattern) ~= nil
end

local function arithmetic()
  check(7 // 2 == 3 and -7 // 2 == -4 and 7 % -3 == -2 and -7 % 3 == 2, "floor division/modulo")
  check(7.5 // 2 == 3.0 and math.type(7.5 // 2) == "float", "float floor division")
  check(math.type(7 // 2) == "integer" and math.type(7 / 2) == "float" and 7 / 2 == 3.5, "number subtypes")
  check(math.maxinteger + 1 == math.mininteger and math.mininteger - 1 == math.maxinteger, "integer overflow wraps")
  check(math.mininteger // -1 == math.mininteger and math.mininteger % -1 == 0, "mininteger // -1")
  check(math.maxinteger * 2 == -2, "multiplication wraps")
  check((3 & 5) == 1 and (3 | 5) == 7 and (3 ~ 5) == 6 and ~0 == -1, "bitwise and/or/xor/not")
  check(1 << 63 == math.mininteger and 1 << 64 == 0 and -1 >> 1 == math.maxinteger, "shifts are logical")
  check(1 >> -2 == 4 and 0xff << 56 >> 60 == 0xf, "negative and chained shifts")
  check(2 ^ 10 == 1024.0 and math.type(2 ^ 10) == "float", "exponentiation is float")
  check(1 / 0 == math.huge and -1 / 0 == -math.huge and 1.0 // 0 == math.huge, "float division by zero")
  local nan = 0 / 0
  check(nan ~= nan, "NaN is not equal to itself")
  check(fails(function() return 1 // 0 end, "attempt to divide by zero"), "integer // 0 raises")
  check(fails(function() return 1 % 0 end, "attempt to perform 'n%%0'"), "integer % 0 raises")
  check(math.tointeger(3.0) == 3 and math.tointeger(3.5) == nil and 3 == 3.0, "integer/float equality")
  check(math.ult(1, -1) and not math.ult(-1, 1), "unsigned comparison")
  check(math.abs(math.mininteger) == math.mininteger and math.abs(-2.5) == 2.5, "abs")
  check(math.fmod(-7, 3) == -1 and math.fmod(7, -3) == 1, "fmod truncates")
  check(math.floor(-2.5) == -3 and math.ceil(-2.5) == -2 and math.type(math.floor(2.5)) == "integer", "floor/ceil")
  check(math.max(3, 9, -1) == 9 and math.min(3.5, 2) == 2, "min/max")
  local n = 0
  for _ = math.maxinteger - 2, math.maxinteger do n = n + 1 end
  check(n == 3, "for loop up to maxinteger terminates")
  n = 0
  for _ = 1, 0, 1 do n = n + 1 end
  for _ = 1.0, 2.0, 0.25 do n = n + 1 end
  check(n == 5, "empty and float for loops")
end

local function coercions()
  check("10" + 5 == 15 and math.type("10" + 5) == "integer", "string + integer")
  check("3.0" + 1 == 4.0 and math.type("3.0" + 1) == "float", "string + float")
  check(10 .. "" == "10" and 1.5 .. "|" .. -0.0 == "1.5|-0.0", "number to string")
  check(tonumber("0x10") == 16 and tonumber("  12  ") == 12 and tonumber("1e2") == 100.0, "tonumber")
  check(tonumber("z", 36) == 35 and tonumber("777", 8) == 511 and tonumber("abc") == nil, "tonumber with base")
  check(tostring(2 ^ 53) == "9.007199254741e+15" and tostring(1e15) == "1e+15", "float formatting %.14g")
  check(string.format("%.17g", 0.1) == "0.10000000000000001", "%.17g")
  check(tostring(math.pi) == "3.1415926535898" and tostring(-0.0) == "-0.0", "tostring of floats")
  check("10" < "9" and fails(function() return 1 < "2" end, "attempt to compare"), "comparisons do not coerce")
  check(fails(function() return "abc" + 1 end, "attempt to add"), "non-numeric string arithmetic")
  check(("0x7fffffffffffffff" + 0) == math.maxinteger and ("0xffffffffffffffff" + 0) == -1, "hex strings wrap")
end

local function strings()
  local s = string.format("%5d|%-5s|%05.1f|%x|%q", 42, "ab", 3.14159, 255, "a\nb")
  check(s == '   42|ab   |003.1|ff|"a\\\nb"', "string.format")
  check(string.format("%q", math.mininteger) == "0x8000000000000000", "%q of mininteger")
  check(("hello world"):find("o w") == 5 and select(2, ("hello"):find("l+")) == 4, "find")
  check(("a.b"):find(".", 1, true) == 2 and ("abc"):find("b", -1) == nil, "plain find and init")
  local k, v = ("key = value"):match("(%w+)%s*=%s*(%w+)")
  check(k == "key" and v == "value", "match captures")
  local r, count = ("hello world"):gsub("o", "0")
  check(r == "hell0 w0rld" and count == 2, "gsub with string")
  check(("abc"):gsub("%w", function(c) return c:upper() .. "." end) == "A.B.C.", "gsub with function")
  check(("$x + $y"):gsub("%$(%w+)", { x = "1", y = 2 }) == "1 + 2", "gsub with table")
  check(("f(a(b)c) g(d)"):match("%b()") == "(a(b)c)", "balanced match")
  check(("THE (quick) fox"):gsub("%f[%a]%a+", "w") == "w (w) w", "frontier pattern")
  local words = {}
  for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
  check(#words == 3 and words[3] == "three", "gmatch")
  check(("abc"):rep(3, "-") == "abc-abc-abc" and ("hello"):sub(-3) == "llo", "rep/sub")
  check(("Hello"):upper() == "HELLO" and ("Hello"):reverse() == "olleH", "upper/reverse")
  check(string.char(72, 105) == "Hi" and select("#", ("abc"):byte(1, -1)) == 3, "char/byte")
  local packed = string.pack("<i4", 0x01020304)
  check(packed == "\4\3\2\1" and string.unpack("<i4", packed) == 0x01020304, "pack little endian")
  local blob = string.pack(">I2 s1 z d", 513, "ab", "cd", 1.5)
  local a, b, c, d, nextpos = string.unpack(">I2 s1 z d", blob)
  check(a == 513 and b == "ab" and c == "cd" and d == 1.5 and nextpos == #blob + 1, "pack/unpack round trip")
  check(string.packsize("<i4 i8") == 12 and string.packsize("!8 i1 i8") == 16, "packsize and alignment")
  check(string.unpack("<i8", string.pack("<i8", math.mininteger)) == math.mininteger, "pack mininteger")
  local u = utf8.char(72, 228, 8364, 128512)
  check(#u == 10 and utf8.len(u) == 4 and utf8.offset(u, 3) == 4, "utf8 char/len/offset")
  local cps = {}
  for _, cp in utf8.codes(u) do cps[#cps + 1] = cp end
  check(table.concat(cps, ",") == "72,228,8364,128512", "utf8.codes")
  check(utf8.len("\xff") == nil and select("#", utf8.codepoint(u, 1, -1)) == 4, "utf8 invalid/codepoint")
end

local function tables()
  local people = {
    { name = "carol", age = 31 }, { name = "alice", age = 31 }, { name = "bob", age = 25 },
    { name = "dave", age = 40 }, { name = "eve", age = 25 },
  }
  table.sort(people, function(x, y)
    if x.age ~= y.age then return x.age > y.age end
    return x.name < y.name
  end)
  local order = {}
  for i, p in ipairs(people) do order[i] = p.name end
  check(table.concat(order, " ") == "dave alice carol bob eve", "sort with comparator")
  local t = { 1, 2, 3 }
  table.insert(t, 4)
  table.insert(t, 1, 0)
  check(table.concat(t, ", ") == "0, 1, 2, 3, 4", "insert/concat")
  check(table.remove(t, 2) == 1 and table.remove(t) == 4 and #t == 3, "remove")
  check(table.concat(table.move({ 1, 2, 3 }, 1, 3, 3, { 9, 9 }), "") == "99123", "move")
  check(select("#", table.unpack({ 1, nil, 3 }, 1, 3)) == 3 and select(-1, 1, 2, 3) == 3, "unpack/select")
  local packed = table.pack(nil, nil)
  check(packed.n == 2, "table.pack keeps n")
  local numbers = {}
  for i = 1, 1000 do numbers[i] = (i * 7919) % 1000 end
  table.sort(numbers)
  local sorted = true
  for i = 2, #numbers do sorted = sorted and numbers[i - 1] <= numbers[i] end
  check(sorted and numbers[1] == 0 and numbers[1000] == 999, "sort 1000 integers")
  local h, n = { a = 1, b = 2, [1.0] = "one", [2 ^ 53] = "big" }, 0
  for _ in pairs(h) do n = n + 1 end
  check(n == 4 and h[1] == "one" and h[math.tointeger(2 ^ 53)] == "big", "hash keys normalise floats")
end

local function closures()
  local function counter()
    local c = 0
    return function() c = c + 1; return c end, function() return c end
  end
  local inc, get = counter()
  inc(); inc()
  local inc2 = counter()
  check(get() == 2 and inc2() == 1, "closures share/separate upvalues")
  local fs = {}
  for i = 1, 3 do fs[i] = function() return i * 10 end end
  check(fs[1]() + fs[2]() + fs[3]() == 60, "fresh loop variable per iteration")
  local function fib(x) if x < 2 then return x end return fib(x - 1) + fib(x - 2) end
  check(fib(20) == 6765, "recursion")
  local function sum(...) local s = 0; for _, v in ipairs({ ... }) do s = s + v end; return s, select("#", ...) end
  local s, cnt = sum(1, 2, 3, 4)
  check(s == 10 and cnt == 4, "varargs")
  local function tail(x) if x == 0 then return "done" end return tail(x - 1) end
  check(tail(1000000) == "done", "proper tail calls")
end

local function metatables()
  local V = {}
  V.__index = V
  local function vec(x, y) return setmetatable({ x = x, y = y }, V) end
  V.__add = function(a, b) return vec(a.x + b.x, a.y + b.y) end
  V.__eq = function(a, b) return a.x == b.x and a.y == b.y end
  V.__lt = function(a, b) return a:len2() < b:len2() end
  V.__le = function(a, b) return a:len2() <= b:len2() end
  V.__tostring = function(a) return ("(%g, %g)"):format(a.x, a.y) end
  V.__call = function(a, k) return a.x * k end
  V.__len = function() return 2 end
  V.__concat = function(a, b) return tostring(a) .. tostring(b) end
  function V:len2() return self.x * self.x + self.y * self.y end
  local p = vec(1, 2) + vec(3, 4)
  check(p == vec(4, 6) and tostring(p) == "(4, 6)", "__add/__eq/__tostring")
  check(vec(1, 1) < vec(2, 2) and vec(2, 2) <= vec(2, 2) and not (vec(3, 3) < vec(1, 1)), "__lt/__le")
  check(p(10) == 40 and #p == 2 and p .. "!" == "(4, 6)!", "__call/__len/__concat")
  local defaults = setmetatable({}, { __index = function(_, key) return key .. "?" end })
  check(defaults.color == "color?" and rawget(defaults, "color") == nil, "__index function")
  local store = {}
  local proxy = setmetatable({}, { __index = store, __newindex = function(_, key, val) rawset(store, key, val * 2) end })
  proxy.a = 21
  check(proxy.a == 42 and rawget(proxy, "a") == nil, "__newindex")
  local gc_ran = false
  local function garbage() setmetatable({}, { __gc = function() gc_ran = true end }) end
  garbage()
  collectgarbage(); collectgarbage()
  check(gc_ran, "__gc runs on collection")
  local weak = setmetatable({}, { __mode = "k" })
  local function fill() weak[{}] = 1 end
  fill()
  collectgarbage()
  check(next(weak) == nil, "weak keys are collected")
  local closed = {}
  do
    local _ <close> = setmetatable({}, { __close = function() closed[#closed + 1] = "x" end })
  end
  check(#closed == 1, "to-be-closed variable")
end

local function coroutines()
  local gen = coroutine.wrap(function() for i = 1, 5 do coroutine.yield(i) end end)
  local s = 0
  for _ = 1, 5 do s = s + gen() end
  check(s == 15, "coroutine.wrap generator")
  local co = coroutine.create(function(a, b)
    local c = coroutine.yield(a + b)
    local d, e = coroutine.yield(c * 2)
    return d + e
  end)
  local ok1, r1 = coroutine.resume(co, 1, 2)
  local ok2, r2 = coroutine.resume(co, 10)
  local ok3, r3 = coroutine.resume(co, 3, 4)
  check(ok1 and r1 == 3 and ok2 and r2 == 20 and ok3 and r3 == 7, "resume/yield passing values")
  check(coroutine.status(co) == "dead" and not coroutine.resume(co), "dead coroutine")
  local bad = coroutine.create(function() error("inside") end)
  local ok, err = coroutine.resume(bad)
  check(not ok and err:find("inside"), "error inside coroutine")
  check(not coroutine.isyieldable() and select(2, coroutine.running()), "main thread")
  local pending = coroutine.create(function() coroutine.yield() end)
  coroutine.resume(pending)
  check(coroutine.close(pending) and coroutine.status(pending) == "dead", "coroutine.close")
end

local function errors()
  local ok, e = pcall(error, { code = 42 })
  check(not ok and type(e) == "table" and e.code == 42, "error with table object")
  ok, e = pcall(function() error("boom") end)
  check(not ok and e:find("^[^:]+:%d+: boom$"), "error position")
  ok, e = pcall(function() error("plain", 0) end)
  check(e == "plain", "error level 0")
  local handled = select(2, xpcall(function() local x = nil; return x.field end,
    function(m) return "handled: " .. m end))
  check(handled:find("^handled: .*attempt to index a nil value"), "xpcall handler")
  ok, e = pcall(pcall)
  check(not ok and e:find("bad argument"), "pcall without function")
  local depth = 0
  local function deep() depth = depth + 1; return deep() + 1 end
  ok, e = pcall(deep)
  check(not ok and e:find("stack overflow") and depth > 1000, "stack overflow is caught")
  check(load("return 1 +")== nil and select(2, load("x =")):find("expected"), "syntax errors")
  check(load("return ...")(7) == 7 and load(string.dump(function(a) return a * 3 end))(5) == 15, "load and string.dump")
end

local function gotos()
  local found
  for i = 1, 10 do
    for j = 1, 10 do
      if i * j == 42 then found = i .. "x" .. j; goto done end
    end
  end
  ::done::
  local odd = 0
  for i = 1, 10 do
    if i % 2 == 0 then goto continue end
    odd = odd + i
    ::continue::
  end
  check(found == "6x7" and odd == 25, "goto break and continue")
end

local function computations()
  local limit, sieve, primes = 100000, {}, 0
  for i = 2, limit - 1 do
    if not sieve[i] then
      primes = primes + 1
      for j = i * i, limit - 1, i do sieve[j] = true end
    end
  end
  check(primes == 9592, "primes below 100000")
  local parts = {}
  for i = 1, 2000 do parts[i] = tostring(i * i) end
  local text = table.concat(parts, ",")
  local fnv = 0x811c9dc5
  for i = 1, #text do fnv = ((fnv ~ text:byte(i)) * 0x01000193) & 0xffffffff end
  check(#text == 14542 and fnv == 0x79b98485, "FNV-1a 32-bit hash")
  local crc_table = {}
  for i = 0, 255 do
    local c = i
    for _ = 1, 8 do c = (c & 1 == 1) and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
    crc_table[i] = c
  end
  local function crc32(str)
    local c = 0xffffffff
    for i = 1, #str do c = crc_table[(c ~ str:byte(i)) & 0xff] ~ (c >> 8) end
    return c ~ 0xffffffff
  end
  check(crc32("The quick brown fox jumps over the lazy dog") == 0x414fa339, "CRC-32 of a phrase")
  check(crc32(text) == 0x823ea358, "CRC-32 of the squares text")
  local a, b = 0, 1
  for _ = 1, 90 do a, b = b, a + b end
  check(a == 2880067194370816120, "fib(90) in 64-bit integers")
  local x, acc = 12345, 0
  for _ = 1, 100000 do
    x = x * 6364136223846793005 + 1442695040888963407
    acc = acc ~ (x >> 33)
  end
  check(acc == 1447073288, "64-bit LCG checksum")
  local basel = 0.0
  for i = 1, 10000 do basel = basel + 1.0 / (i * i) end
  check(math.abs(basel - math.pi ^ 2 / 6) < 1e-3, "Basel sum")
  check(os.date("!%Y-%m-%d %H:%M:%S", 86400 * 365) == "1971-01-01 00:00:00", "os.date in UTC")
end

local function garbage_collector()
  collectgarbage()
  local before = collectgarbage("count")
  check(math.type(before) == "float" and before > 0, "collectgarbage count")
  local big = {}
  for i = 1, 200000 do big[i] = { i } end
  local during = collectgarbage("count")
  check(during > before + 1000, "allocation raises count")
  big = nil
  collectgarbage(); collectgarbage()
  check(collectgarbage("count") < during / 2, "collection frees memory")
  check(collectgarbage("isrunning") and collectgarbage("step") ~= nil, "isrunning/step")
  local mode = collectgarbage("incremental")
  check((mode == "generational" or mode == "incremental") and collectgarbage("generational") == "incremental"
    and collectgarbage(mode) == "generational", "switching gc modes")
end

local sections = { arithmetic, coercions, strings, tables, closures, metatables, coroutines, errors, gotos,
  computations, garbage_collector }
local ok, err = xpcall(function()
  for _, section in ipairs(sections) do section() end
end, debug.traceback)
if not ok then
  io.stderr:write("FAILED: ", tostring(err), "\n")
  os.exit(1)
end
print(("OK %d checks"):format(checks))
