-- wrk script: 16 "GET /" requests per write, as TechEmpower's plaintext test
-- pipelines them. wrk counts the requests in the buffer and waits for all 16
-- responses before writing the next batch.
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format("GET", "/")
  end
  req = table.concat(r)
end

request = function()
  return req
end
