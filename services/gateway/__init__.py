"""The websocket gateway: the exchange's front door for bots and people (docs/gateway-protocol.md).

A gateway instance holds no state of its own that matters: it follows the engine's event log
into a read model (``read_model``), sends every trading request to the engine as a
command (``command_sender``) and answers it from the engine's result, and pushes streams to the
connections subscribed (``streams``). So any number of instances can run side by side, and a
client sees the same exchange whichever one it is connected to.

Modules, one job each: ``protocol`` (the messages), ``auth`` (keys, secrets, login signatures),
``convert`` (requests to engine commands, decimal strings to integers), ``views`` (state to
decimal-string views), ``read_model`` (the log, folded), ``results`` (a command's response from
its events), ``rate_limit``, ``log_follower`` (Kafka in), ``command_sender`` (Kafka out),
``connection`` (one websocket's bounded send buffer), ``streams`` (subscriptions and pushes),
``session`` (one request, dispatched), ``server`` (aiohttp and the loop that ties them).
"""
