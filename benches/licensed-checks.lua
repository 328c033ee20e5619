-- wrk script of the licensed update check (benches/update-checks.sh, perf-checks.sh):
-- cycles through the "path<TAB>site" lines of the file given after `--`, each sent with
-- the WordPress User-Agent of its site, starting at a random line per thread.
-- Each request is formatted once, in init: wrk shares the 2 cores with the server, so a
-- per-request wrk.format would be client work counted against the server.
local requests = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local path, site = line:match("^([^\t]+)\t(.+)$")
    requests[#requests + 1] =
      wrk.format("GET", path, { ["User-Agent"] = "WordPress/6.7; https://" .. site })
  end
  i = math.random(#requests)
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
