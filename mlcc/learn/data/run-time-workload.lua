-- A fixed workload for the run-time benchmark (run_time.py): the same output every run.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end

local t = {}
local seed = 12345
for i = 1, 60000 do
  seed = (seed * 1103515245 + 12345) % 2147483648
  t[i] = seed % 100000
end
table.sort(t)

local words = {}
for i = 1, 20000 do words[#words + 1] = string.format("w%05d", t[i] % 9973) end
local text = table.concat(words, " ")
local counts = {}
for w in text:gmatch("%S+") do counts[w] = (counts[w] or 0) + 1 end
local distinct = 0
for _ in pairs(counts) do distinct = distinct + 1 end

local function counter()
  local n = 0
  return function() n = n + 1; return n end
end
local c = counter()
for _ = 1, 100000 do c() end

print(fib(24), t[1], t[#t], distinct, #text, c(), string.rep("ab", 3):upper())
