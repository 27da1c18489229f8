local x = 
return {
local = 1
