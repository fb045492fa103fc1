"""The Mobile IP MIB (RFC 4295) served as an AgentX (RFC 2741) subagent, sans-IO.

- :mod:`.agentx`: the AgentX PDU codec (header, OIDs, octet strings, varbinds, search ranges).
- :mod:`.mib`: the RFC 4295 object identifiers and the mapping from a daemon's status snapshot
  (the dict ``mip4 status --json`` prints) to a sorted ``OID -> value`` view, with Get,
  GetNext and GetBulk over it.
- :mod:`.session`: the subagent's side of one AgentX session as a state machine fed bytes
  (open, register, answer, ping); ``mip4.io.agentx`` moves the bytes over the master's socket.

Standard library only: no socket, no asyncio, no mip4 engine types (the snapshot is plain
data).
"""
