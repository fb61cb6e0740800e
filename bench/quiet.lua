-- quiet.lua - the scenario of bench/run --layers' "stored" layer: no handlers at all. Parley
-- still commits every event before its 200, and the engine still records the customer's window
-- and marks the event done in one turn's commit; it runs no Lua and sends nothing. The layer
-- measures the durable part of the path without the scenario and the reply.
return {}
